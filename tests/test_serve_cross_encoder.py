"""Cross-encoder loading and scoring on tiny random models built here (1, 2 and 3 labels; no network)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from os_rerank.contracts import CONTRACTS
from os_rerank.server.app import EndpointServer
from os_rerank.server.scorers import ScorerError, load_scorer
from tests.support.cross_encoder import PAIRS, build_tiny_cross_encoder, reference_scores

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")


# The torch backend is optional; these tests run where it is installed. CI installs none: PyPI's torch is the CUDA
# build (gigabytes), and the ONNX Runtime path (test_serve_onnx_models.py) needs no torch.
TORCH_SKIP = "torch is not installed (the optional torch backend: pip install 'os-rerank[torch]')"
torch = pytest.importorskip("torch", reason=TORCH_SKIP)
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install os-rerank[serve])")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    os.environ["HF_HUB_OFFLINE"] = "1"  # loading must never reach for the hub
    root = tmp_path_factory.mktemp("tiny-cross-encoders")
    return {n: build_tiny_cross_encoder(root / f"labels-{n}", n) for n in (1, 2, 3)}


@pytest.mark.parametrize("labels", [1, 2])
def test_cross_encoder_matches_unbatched_reference(tiny_models: dict[int, Path], labels: int) -> None:
    scorer = load_scorer(tiny_models[labels], batch_size=4)
    scores = scorer.score(PAIRS)
    assert scores == pytest.approx(reference_scores(tiny_models[labels], PAIRS, 128), abs=1e-4)
    assert all(0.0 < s < 1.0 for s in scores)
    head = "sigmoid of 1 logit" if labels == 1 else "softmax P(label 1) of 2 labels"
    assert scorer.name == f"cross-encoder labels-{labels} ({head}, max 128 tokens)"


def test_three_labels_are_refused(tiny_models: dict[int, Path]) -> None:
    with pytest.raises(ScorerError, match="the model has 3 labels"):
        load_scorer(tiny_models[3])


def test_not_a_model_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="no config.json"):
        load_scorer(tmp_path)


def test_truncation_cuts_the_document_then_falls_back(tiny_models: dict[int, Path]) -> None:
    scorer = load_scorer(tiny_models[1], max_length=16)
    long_doc = " ".join(["capital"] * 40)
    rows = scorer.encode([("short query", long_doc), (long_doc, "tiny doc")])
    assert [len(r["input_ids"]) for r in rows] == [16, 16]
    assert rows[0]["input_ids"][:4] == scorer.tokenizer("short query", "x")["input_ids"][:4]  # query kept whole
    scores = scorer.score([("short query", long_doc), (long_doc, "tiny doc")])
    assert scores == pytest.approx(reference_scores(tiny_models[1], [("short query", long_doc)], 16)
                                   + reference_scores(tiny_models[1], [(long_doc, "tiny doc")], 16), abs=1e-4)


def test_int8_quantized_scorer_runs(tiny_models: dict[int, Path]) -> None:
    scorer = load_scorer(tiny_models[1], quantize="int8")
    assert len(scorer.score(PAIRS)) == len(PAIRS)
    assert scorer.name.endswith(", int8)")


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_tiny_model_behind_boto3(tiny_models: dict[int, Path], name: str) -> None:
    import boto3

    contract = CONTRACTS[name]
    scorer = load_scorer(tiny_models[1])
    docs = [d for _, d in PAIRS]
    query = "수도 capital"
    with EndpointServer(contract, scorer, credentials={"AKIDTINY": "s"}) as server:
        c = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                         aws_access_key_id="AKIDTINY", aws_secret_access_key="s")
        raw = c.invoke_endpoint(EndpointName=server.endpoint_name, ContentType="application/json",
                                Body=json.dumps(contract.build_request(query, docs)))["Body"].read()
    assert contract.parse_response(json.loads(raw), len(docs)) == pytest.approx(
        scorer.score([(query, d) for d in docs]), abs=1e-6)
