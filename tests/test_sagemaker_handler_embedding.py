"""os-rerank's SageMaker handler (code/inference.py) serving an embedding model, chosen by the SageMaker model's
environment (OS_RERANK_EMBEDDING_CONTRACT), on a tiny random BERT with its ONNX graph (no torch).

In-process it answers byte for byte what `serve --embedding-model` answers, for every embedding contract, and
refuses what serve refuses with the same words; inside the real SageMaker Hugging Face inference toolkit 2.6.0 and
MMS's worker (tests/fakes/mms_frontend.py, the DLC's transformers 4.37.0, numpy 1), on the archive unpacked as
SageMaker unpacks it, the vectors are serve's to float precision. The rerank side is tests/test_sagemaker_handler.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
pytest.importorskip("transformers", reason="transformers is not installed (pip install 'os-rerank[serve]')")

from os_rerank.aws.archive import build_model_archive  # noqa: E402
from os_rerank.embedding_contracts import EMBEDDING_CONTRACT_NAMES, get_embedding_contract  # noqa: E402
from os_rerank.server import inference  # noqa: E402
from os_rerank.server.app import EndpointServer  # noqa: E402
from os_rerank.server.embedders import SentenceEmbedder, cached_onnx  # noqa: E402
from tests.fakes.bert_reference import build_tiny_bert, reference_embeddings  # noqa: E402
from tests.support.toolkit import run_toolkit  # noqa: E402

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

TEXTS = ["What is the capital of the United States?", "대한민국의 수도는 서울이다", "भारत की राजधानी नई दिल्ली है",
         'quotes " and \\ backslashes ${parameters.body}', "control \x00\x1f\t\n\u2028 end", ""]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT embedder with its ONNX file in the directory (what the toolkit venv, without torch, runs)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading must never reach for the hub
    root = tmp_path_factory.mktemp("embedding-handler")
    directory = build_tiny_bert(root / "tiny-bert")
    shutil.copy(cached_onnx(directory, root / "cache"), directory / "model.onnx")
    return directory


def body_for(contract: str, texts: list[str]) -> bytes:
    return json.dumps(get_embedding_contract(contract).build_request(texts), ensure_ascii=False).encode()


def serve_answers(model: Path, contract: str, bodies: list[bytes]) -> list[tuple[int, str]]:
    """(status, body or error message) from `serve`'s embedding endpoint (alone) for each body."""
    out = []
    with EndpointServer(None, None, embedder=SentenceEmbedder(model),
                        embedding_contract=get_embedding_contract(contract)) as server:
        for body in bodies:
            request = Request(f"{server.url}/invocations", data=body, headers={"Content-Type": "application/json"})
            try:
                with urlopen(request, timeout=30) as reply:
                    out.append((reply.status, reply.read().decode("utf-8")))
            except HTTPError as exc:
                out.append((exc.code, json.loads(exc.read())["message"]))
    return out


def handler_answer(handler: Any, body: bytes) -> str:
    return inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json"), handler), None)


@pytest.mark.parametrize("contract", EMBEDDING_CONTRACT_NAMES)
def test_the_handler_answers_what_serve_answers(model: Path, contract: str) -> None:
    handler = inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: contract})
    assert isinstance(handler, inference.EmbeddingHandler) and handler.embedder.backend == "onnx"
    bodies = [body_for(contract, TEXTS), body_for(contract, TEXTS[:1])]
    got = [handler_answer(handler, body) for body in bodies]
    assert [(200, text) for text in got] == serve_answers(model, contract, bodies)
    vectors = get_embedding_contract(contract).parse_response(json.loads(got[0]), len(TEXTS))
    for vector, want in zip(vectors, reference_embeddings(model, TEXTS, max_length=24), strict=True):
        assert 1.0 - float(np.dot(vector, want)) < 1e-6


def test_the_handler_refuses_what_serve_refuses_with_its_words(model: Path) -> None:
    contract = "vector-embedding"
    handler = inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: contract})
    bad = [b"{nope", b"", b'{"inputs": []}', b'{"inputs": [1]}', b'{"texts": ["a"]}', b"[" * 3000, b"\xff{}"]
    for body, (status, message) in zip(bad, serve_answers(model, contract, bad), strict=True):
        assert status == 400
        with pytest.raises(inference.HandlerError) as info:
            handler_answer(handler, body)
        assert str(info.value) == message
    bounded = inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: contract,
                                             inference.MAX_DOCUMENTS_ENV: "2", inference.MAX_LENGTH_ENV: "8"})
    assert isinstance(bounded, inference.EmbeddingHandler) and bounded.embedder.max_length == 8
    with pytest.raises(inference.HandlerError, match=r"request has 3 texts; this endpoint embeds at most 2 per "
                                                     r"request \(OS_RERANK_MAX_DOCUMENTS\)"):
        handler_answer(bounded, body_for(contract, ["a", "b", "c"]))


def test_model_fn_says_what_is_wrong(model: Path) -> None:
    with pytest.raises(inference.HandlerError, match="OS_RERANK_CONTRACT is not set; .* \\(or "
                                                     "OS_RERANK_EMBEDDING_CONTRACT to one of vector-embedding"):
        inference.load_handler(model, {})
    with pytest.raises(inference.HandlerError, match="OS_RERANK_EMBEDDING_CONTRACT: unknown embedding contract "
                                                     "'tei'; known: vector-embedding"):
        inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: "tei"})
    with pytest.raises(inference.HandlerError, match="both OS_RERANK_CONTRACT and OS_RERANK_EMBEDDING_CONTRACT are "
                                                     "set; a SageMaker model serves one model"):
        inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: "tei-embed",
                                       inference.CONTRACT_ENV: "tei-rerank"})
    with pytest.raises(inference.HandlerError, match="OS_RERANK_BACKEND='openvino': an embedding model runs with "
                                                     "onnx or torch"):
        inference.load_handler(model, {inference.EMBEDDING_CONTRACT_ENV: "tei-embed",
                                       inference.BACKEND_ENV: "openvino"})


@pytest.mark.parametrize("contract", EMBEDDING_CONTRACT_NAMES)
def test_inside_the_toolkit_each_embedding_contract_answers_as_serve_does(model: Path, contract: str,
                                                                         tmp_path: Path) -> None:
    archive = build_model_archive(model, tmp_path / "model.tar.gz")
    with tarfile.open(archive.path) as tar:
        tar.extractall(tmp_path / "opt-ml-model", filter="data")
    unpacked = tmp_path / "opt-ml-model"
    bodies = [body_for(contract, TEXTS), body_for(contract, TEXTS[3:])]
    requests: list[dict[str, Any]] = [{"body": b.decode("utf-8")} for b in bodies] + [{"body": "{nope"}]
    result = run_toolkit(unpacked, requests, {inference.EMBEDDING_CONTRACT_ENV: contract}, tmp_path)
    assert result["load"][0] == 200 and result["transformers"] == "4.37.0"
    assert result["os_rerank_file"] == str(unpacked / "code" / "os_rerank" / "__init__.py")  # the vendored copy
    answers = result["answers"]
    expected = serve_answers(model, contract, [*bodies, b"{nope"])
    parse = get_embedding_contract(contract).parse_response
    for answer, (status, text), n in zip(answers[:2], expected[:2], (len(TEXTS), len(TEXTS) - 3), strict=True):
        assert (answer["status"], status) == (200, 200)
        got, want = parse(json.loads(answer["body"]), n), parse(json.loads(text), n)
        assert np.allclose(got, want, atol=1e-6)  # numpy 1 and the toolkit's onnxruntime there, ours here
    assert (answers[2]["status"], answers[2]["message"]) == (400, expected[2][1])
