"""serve --model with an ONNX export: no torch at all, on tiny models built here (tests/fakes/tiny_onnx.py).

The scorer must reproduce the model's own answer for each pair alone, whatever the batching, padding, length
sorting and truncation, and turn logits into the score the stock container would (sigmoid of one logit, softmax
P(label 1) of two). The torch path and the export from a torch model are in test_serve_cross_encoder.py and
test_serve_onnx.py, which run where torch is installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from os_rerank.contracts import CONTRACTS
from os_rerank.server.app import EndpointServer
from os_rerank.server.scorers import CrossEncoderScorer, ScorerError, load_scorer
from tests.fakes.tiny_onnx import CORPUS, reference_scores

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
pytest.importorskip("transformers", reason="transformers is not installed (pip install 'os-rerank[serve]')")

QUERY = CORPUS[3]
PAIRS = [(QUERY, d) for d in CORPUS] + [("", "empty query"), (QUERY, ""), (QUERY, "unseen wörds 🙂 " * 30)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from tests.fakes.tiny_onnx import build

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading must never reach for the hub
    root = tmp_path_factory.mktemp("tiny-onnx")
    return {n: build(root / f"labels-{n}", n) for n in (1, 2)}


@pytest.mark.parametrize("labels", [1, 2])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_scores_match_the_model_pair_by_pair(models: dict[int, Path], labels: int, batch_size: int) -> None:
    scorer = load_scorer(models[labels], batch_size=batch_size)
    assert isinstance(scorer, CrossEncoderScorer) and scorer.backend == "onnx" and scorer.model is None
    assert scorer.score(PAIRS) == pytest.approx(reference_scores(models[labels], PAIRS), abs=1e-5)
    head = "sigmoid of 1 logit" if labels == 1 else "softmax P(label 1) of 2 labels"
    assert scorer.name == f"cross-encoder labels-{labels} ({head}, max 64 tokens, onnxruntime)"


def test_truncation_cuts_the_document_to_max_length(models: dict[int, Path]) -> None:
    scorer = load_scorer(models[1], max_length=16)
    assert scorer.score(PAIRS) == pytest.approx(reference_scores(models[1], PAIRS, max_length=16), abs=1e-5)


def test_the_hub_layout_onnx_folder_is_found(models: dict[int, Path], tmp_path: Path) -> None:
    hub = shutil.copytree(models[1], tmp_path / "hub")
    (hub / "onnx").mkdir()
    (hub / "model.onnx").rename(hub / "onnx" / "model.onnx")
    assert load_scorer(hub).score(PAIRS[:3]) == pytest.approx(reference_scores(models[1], PAIRS[:3]), abs=1e-5)


def test_int8_keeps_every_pair_in_order(models: dict[int, Path]) -> None:
    scorer = load_scorer(models[1], quantize="int8")
    scores = scorer.score(PAIRS)
    assert len(scores) == len(PAIRS) and all(0.0 < s < 1.0 for s in scores)
    assert scorer.score(PAIRS[::-1]) == pytest.approx(scores[::-1], abs=1e-6)


def test_refusals_name_what_to_do(models: dict[int, Path], tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="quantize bf16 needs --backend torch"):
        load_scorer(models[1], quantize="bf16")
    with pytest.raises(ScorerError, match="no config.json; expected a directory saved with save_pretrained"):
        load_scorer(tmp_path)
    three = shutil.copytree(models[2], tmp_path / "three")
    config = (three / "config.json").read_text()
    (three / "config.json").write_text(config.replace('"num_labels": 2', '"num_labels": 3'))
    with pytest.raises(ScorerError, match="has 3 labels; a cross-encoder needs 1"):
        load_scorer(three)


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_every_contract_serves_the_model(models: dict[int, Path], contract: str) -> None:
    import json
    from urllib.request import Request, urlopen

    docs = [d for _, d in PAIRS[:5]]
    body = json.dumps(CONTRACTS[contract].build_request(QUERY, docs)).encode()
    with EndpointServer(CONTRACTS[contract], load_scorer(models[1])) as server:
        request = Request(f"{server.url}/invocations", data=body, headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=10) as reply:
            scores = CONTRACTS[contract].parse_response(json.loads(reply.read()), len(docs))
    assert scores == pytest.approx(reference_scores(models[1], [(QUERY, d) for d in docs]), abs=1e-5)


@pytest.mark.parametrize(("query", "cut"), [
    ("capital of the united states " * 200, True),
    ("대한민국의 수도는 서울이다 भारत की राजधानी नई दिल्ली है। " * 120, True),
    ("x" * 5000 + " tail words", False),  # long in characters, 10 tokens: nothing to cut
    ("word " * 20 + "y" * 3000 + " more words " * 100, True),
], ids=["english", "korean-hindi", "one-long-word", "long-word-after-the-kept-tokens"])
def test_a_long_query_is_cut_without_changing_any_pair_s_tokens(models: dict[int, Path], query: str,
                                                                cut: bool) -> None:
    """The query is tokenized once and cut past what truncation keeps; every pair's tokens are what they would be
    had the whole query gone to the tokenizer with each document (documents shorter and longer than the cut)."""
    scorer = load_scorer(models[1], max_length=32)
    assert isinstance(scorer, CrossEncoderScorer)
    docs = ["", "서울", "short", *("a longer document about the capital " * n for n in (1, 3, 6, 12, 25, 50, 100))]
    expected = []
    for doc in docs:
        try:
            enc = scorer.tokenizer([query], [doc], truncation="only_second", max_length=32)
        except Exception:
            enc = scorer.tokenizer([query], [doc], truncation="longest_first", max_length=32)
        expected.append({k: list(enc[k][0]) for k in ("input_ids", "token_type_ids", "attention_mask")})
    pairs = [(query, d) for d in docs] + [("short query", d) for d in docs]
    got = scorer.encode(pairs)
    assert got[: len(docs)] == expected
    assert got[len(docs):] == scorer.encode([("short query", d) for d in docs])
    assert (scorer._query_words(query) is not None) == cut  # which path was taken
