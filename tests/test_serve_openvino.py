"""serve --backend openvino: the same ONNX export on OpenVINO's CPU plugin, in fp32, no torch.

It must give the model's own answer pair by pair (as ONNX Runtime does), stay in fp32 on CPUs whose plugin would
otherwise pick bf16, and be safe to call from the server's threads at once.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from os_rerank.contracts import CONTRACTS
from os_rerank.server.app import EndpointServer
from os_rerank.server.scorers import CrossEncoderScorer, ScorerError, load_scorer
from tests.fakes.tiny_onnx import CORPUS, reference_scores

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'os-rerank[openvino]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]'), needed to build the model")

QUERY = CORPUS[3]
PAIRS = [(QUERY, d) for d in CORPUS] + [("", "empty query"), (QUERY, ""), (QUERY, "unseen wörds 🙂 " * 30)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from tests.fakes.tiny_onnx import build

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = tmp_path_factory.mktemp("tiny-openvino")
    return {n: build(root / f"labels-{n}", n) for n in (1, 2)}


@pytest.mark.parametrize("labels", [1, 2])
@pytest.mark.parametrize("batch_size", [1, 32])
def test_scores_match_the_model_pair_by_pair(models: dict[int, Path], labels: int, batch_size: int) -> None:
    scorer = load_scorer(models[labels], batch_size=batch_size, backend="openvino", threads=1)
    assert isinstance(scorer, CrossEncoderScorer) and scorer.backend == "openvino" and scorer.model is None
    assert scorer.score(PAIRS) == pytest.approx(reference_scores(models[labels], PAIRS), abs=1e-5)
    assert scorer.name.endswith(", openvino)")


def test_the_plugin_runs_in_fp32(models: dict[int, Path]) -> None:
    scorer = load_scorer(models[1], backend="openvino")
    assert isinstance(scorer, CrossEncoderScorer)
    assert str(scorer._onnx.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "<Type: 'float32'>")


def test_threads_at_once_get_their_own_answers(models: dict[int, Path]) -> None:
    scorer = load_scorer(models[1], backend="openvino", batch_size=2)
    expected = {i: scorer.score(PAIRS[i:] + PAIRS[:i]) for i in range(6)}
    got: dict[int, list[float]] = {}

    def run(i: int) -> None:
        for _ in range(5):
            got[i] = scorer.score(PAIRS[i:] + PAIRS[:i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_quantizing_is_refused(models: dict[int, Path]) -> None:
    with pytest.raises(ScorerError, match="quantize int8 needs --backend torch or onnx"):
        load_scorer(models[1], backend="openvino", quantize="int8")


def test_a_contract_serves_it(models: dict[int, Path]) -> None:
    contract = CONTRACTS["tei-rerank"]
    docs = [d for _, d in PAIRS[:5]]
    body = json.dumps(contract.build_request(QUERY, docs)).encode()
    with EndpointServer(contract, load_scorer(models[2], backend="openvino")) as server:
        request = Request(f"{server.url}/invocations", data=body, headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=10) as reply:
            scores = contract.parse_response(json.loads(reply.read()), len(docs))
    assert scores == pytest.approx(reference_scores(models[2], [(QUERY, d) for d in docs]), abs=1e-5)
