"""`serve --embedding-model`: the local endpoint hosting an embedding model, alone or beside the reranker.

Every embedding contract over every route (container /invocations and TEI's /embed, the SageMaker runtime under
boto3 with SigV4), vectors equal to the independent numpy reference for exactly the texts sent (Korean, Hindi,
`${...}`, quotes, backslashes, control characters), and the refusals the rerank path gives (bad JSON, too many
texts, content type), one line each. The model is a tiny random BERT (tests/fakes/bert_reference.py); MiniLM
itself is checked in test_embedding_model.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import boto3
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
pytest.importorskip("transformers", reason="transformers is not installed (pip install 'os-rerank[serve]')")

from botocore.exceptions import ClientError  # noqa: E402

from os_rerank.cli import main  # noqa: E402
from os_rerank.contracts import get_contract  # noqa: E402
from os_rerank.embedding_contracts import EMBEDDING_CONTRACT_NAMES, get_embedding_contract  # noqa: E402
from os_rerank.server.app import EndpointServer  # noqa: E402
from os_rerank.server.embedders import MODEL_CACHE_ENV, SentenceEmbedder, load_embedder  # noqa: E402
from os_rerank.server.lexical import LexicalScorer  # noqa: E402
from tests.fakes.bert_reference import build_tiny_bert, reference_embeddings  # noqa: E402
from tests.support.serve import read_banner

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["What is the capital of the United States?", "대한민국의 수도는 서울이다", "भारत की राजधानी नई दिल्ली है",
         'quotes " and \\ backslashes ${parameters.body} \\u0022', "control \x00\x1f\t\n\u2028 end", ""]
JSON = "application/json"
KEY, SECRET = "AKIDEMBEDTEST", "embed-secret"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading must never reach for the hub
    return build_tiny_bert(tmp_path_factory.mktemp("serve-embedding") / "tiny-bert")


@pytest.fixture(scope="module")
def embedder(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> SentenceEmbedder:
    return load_embedder(tiny, environ={MODEL_CACHE_ENV: str(tmp_path_factory.mktemp("cache"))}, batch_size=4)


def post(url: str, body: bytes, content_type: str = JSON) -> tuple[int, Any]:
    request = Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_reference(vectors: list[list[float]], tiny: Path, texts: list[str]) -> None:
    want = reference_embeddings(tiny, texts, max_length=24)
    assert len(vectors) == len(texts)
    for got, ref in zip(vectors, want, strict=True):
        assert 1.0 - float(np.dot(got, ref)) < 1e-6


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_each_contract_answers_the_reference_vectors_on_the_container_routes(
        tiny: Path, embedder: SentenceEmbedder, name: str) -> None:
    contract = get_embedding_contract(name)
    body = json.dumps(contract.build_request(TEXTS), ensure_ascii=False).encode()
    with EndpointServer(None, None, embedder=embedder, embedding_contract=contract) as server:
        paths = ["/invocations", *([contract.extra_path] if contract.extra_path else [])]
        for path in paths:
            status, answer = post(server.url + path, body)
            assert status == 200, answer
            assert_reference(contract.parse_response(answer, len(TEXTS)), tiny, TEXTS)
        assert [r.text for r in server.received] == [body.decode()] * len(paths)  # the exact bytes sent


def test_both_models_in_one_server_over_sigv4(tiny: Path, embedder: SentenceEmbedder) -> None:
    contract = get_embedding_contract("vector-embedding")
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), credentials={KEY: SECRET},
                        embedder=embedder, embedding_contract=contract,
                        embedding_endpoint_name="embed-ep") as server:
        client = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                              aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        body = json.dumps(contract.build_request(TEXTS), ensure_ascii=False).encode()
        reply = client.invoke_endpoint(EndpointName="embed-ep", Body=body, ContentType=JSON)
        assert_reference(contract.parse_response(json.loads(reply["Body"].read()), len(TEXTS)), tiny, TEXTS)
        rerank = json.dumps({"pairs": [["capital", "the capital city"]]}).encode()
        answer = json.loads(client.invoke_endpoint(EndpointName="os-rerank-cross-encoder", Body=rerank,
                                                   ContentType=JSON)["Body"].read())
        assert len(answer["scores"]) == 1
        with pytest.raises(ClientError) as info:  # a body the model refuses: SageMaker's 424 quoting the container
            client.invoke_endpoint(EndpointName="embed-ep", Body=b'{"inputs": []}', ContentType=JSON)
        error = info.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424 and error["Error"]["Code"] == "ModelError"
        assert "Received client error (400)" in error["Error"]["Message"]
        assert "inputs: no texts to embed" in error["Error"]["Message"]
        assert "/aws/sagemaker/Endpoints/embed-ep" in error["Error"]["Message"]
        with pytest.raises(ClientError, match="Endpoint nope of account 123456789012 not found"):
            client.invoke_endpoint(EndpointName="nope", Body=body, ContentType=JSON)
        unsigned = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                                aws_access_key_id=KEY, aws_secret_access_key="wrong")
        with pytest.raises(ClientError, match="signature"):
            unsigned.invoke_endpoint(EndpointName="embed-ep", Body=body, ContentType=JSON)
        status, ping = 0, None
        with urlopen(server.url + "/ping", timeout=10) as reply_ping:
            status, ping = reply_ping.status, json.loads(reply_ping.read())
        assert status == 200 and ping["embedding_endpoint_name"] == "embed-ep" and ping["dimension"] == 32
        assert ping["endpoint_name"] == "os-rerank-cross-encoder"


def test_with_both_invocations_is_the_rerankers_and_embed_the_embedders(embedder: SentenceEmbedder) -> None:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), embedder=embedder,
                        embedding_contract=get_embedding_contract("tei-embed")) as server:
        status, answer = post(server.url + "/invocations", json.dumps({"pairs": [["a", "a b"]]}).encode())
        assert status == 200 and list(answer) == ["scores"]
        status, answer = post(server.url + "/embed", b'{"inputs": ["a"]}')
        assert status == 200 and len(answer) == 1 and len(answer[0]) == 32


def test_each_text_reaches_the_model_exactly(embedder: SentenceEmbedder) -> None:
    """Each served vector is the vector of that exact text embedded alone: no text was altered on the way."""
    contract = get_embedding_contract("tei-embed")
    with EndpointServer(None, None, embedder=embedder, embedding_contract=contract) as server:
        status, answer = post(server.url + "/embed", json.dumps(contract.build_request(TEXTS)).encode())
    assert status == 200
    for text, vector in zip(TEXTS, answer, strict=True):
        assert vector == pytest.approx(embedder.embed([text])[0], abs=1e-6)


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b"{not json", JSON, 400, "body is not valid JSON: Expecting property name"),
    (b'{"inputs": []}', JSON, 400, "vector-embedding: inputs: no texts to embed"),
    (b'{"inputs": [1]}', JSON, 400, "vector-embedding: inputs[0]: expected a string"),
    (b'{"texts": ["a"]}', JSON, 400, "vector-embedding:"),
    (json.dumps({"inputs": ["t"] * 4}).encode(), JSON, 413,
     "request has 4 texts; this endpoint embeds at most 3 per request (--max-documents)"),
    (b'{"inputs": ["a"]}', "text/plain", 415, "unsupported content type 'text/plain'"),
])
def test_bad_requests_are_one_line_4xx(embedder: SentenceEmbedder, body: bytes, content_type: str, status: int,
                                       message: str) -> None:
    with EndpointServer(None, None, embedder=embedder, embedding_contract=get_embedding_contract("vector-embedding"),
                        max_documents=3) as server:
        got, answer = post(server.url + "/invocations", body, content_type)
        assert got == status
        assert message in answer["message"] and "\n" not in answer["message"]
        assert post(server.url + "/invocations", b'{"inputs": ["still serving"]}')[0] == 200


def test_a_failing_embedder_is_a_500_not_a_dead_server(embedder: SentenceEmbedder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with EndpointServer(None, None, embedder=embedder,
                        embedding_contract=get_embedding_contract("vector-embedding")) as server:
        monkeypatch.setattr(embedder, "embed_in_turns", lambda texts, turn: 1 / 0)
        status, answer = post(server.url + "/invocations", b'{"inputs": ["a"]}')
        assert status == 500 and answer["message"] == "embedding failed: ZeroDivisionError: division by zero"
        monkeypatch.undo()
        assert post(server.url + "/invocations", b'{"inputs": ["a"]}')[0] == 200


def test_one_name_for_both_models_is_refused(embedder: SentenceEmbedder) -> None:
    with pytest.raises(ValueError, match="both answer as 'same'"):
        EndpointServer(get_contract("pairs-scores"), LexicalScorer(), endpoint_name="same", embedder=embedder,
                       embedding_contract=get_embedding_contract("tei-embed"), embedding_endpoint_name="same")


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_refusals(tmp_path: Path) -> None:
    code, out, err = run("serve", "--port", "0", "--embedding-only")
    assert (code, out) == (2, "")
    assert err.startswith("os-rerank: error: --embedding-only needs an embedding model\n")
    code, out, err = run("serve", "--port", "0", "--embedding-model", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"os-rerank: error: {tmp_path}: no config.json; expected an embedding model directory")
    code, out, err = run("serve", "--help")
    assert (code, err) == (0, "")
    for option in ("--embedding-model", "--embedding-contract", "--embedding-endpoint-name", "--embedding-only",
                   "--embedding-max-length", "minilm"):
        assert option in out


def test_serve_subprocess_embedding_only(tiny: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", MODEL_CACHE_ENV: str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "os_rerank.cli", "serve", "--port", "0", "--embedding-model", str(tiny),
           "--embedding-only", "--embedding-contract", "tei-embed"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner, url = read_banner(proc)
        assert banner[:3] == [
            "embedder  embedding tiny-bert (32 dimensions, mean pooling, L2-normalised, max 24 tokens, onnxruntime)\n",
            "contract  tei-embed (POST /invocations, /embed)\n",
            "endpoint  POST /endpoints/os-rerank-embedding/invocations\n",
        ]
        status, answer = post(url + "/embed", json.dumps({"inputs": TEXTS[:2]}).encode())
        assert status == 200
        assert_reference(answer, tiny, TEXTS[:2])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "POST /embed 200 texts=2 " in stderr
