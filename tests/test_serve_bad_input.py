"""Bad input gets a 4xx with a clear SageMaker-shaped message, and the server keeps serving."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from os_rerank.contracts import get_contract
from os_rerank.server.app import EndpointServer
from os_rerank.server.lexical import LexicalScorer

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

JSON = {"Content-Type": "application/json"}
LIMIT = 4096


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EndpointServer]]:
    started = {name: EndpointServer(get_contract(name), LexicalScorer(), max_body_bytes=LIMIT).start()
               for name in ("hf-text-classification", "pairs-scores", "query-documents-topk", "tei-rerank")}
    yield started
    for s in started.values():
        s.stop()


def request(server: EndpointServer, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, str | None, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, response.getheader("x-amzn-ErrorType"), json.loads(raw)


HF = "hf-text-classification"
# (contract, method, path, body, headers, status, error type, message)
CASES = [
    ("not-json", HF, "POST", "/invocations", b'{"inputs": [', JSON, 400, "ValidationError",
     "body is not valid JSON: Expecting value at line 1 column 13"),
    ("empty-body", HF, "POST", "/invocations", b"", JSON, 400, "ValidationError",
     'body is empty; expected JSON like {"inputs": [{"text": q, "text_pair": d}, ...]}'),
    ("not-utf8", HF, "POST", "/invocations", b'{"inputs": "\xff"}', JSON, 400, "ValidationError",
     "body is not valid UTF-8: byte 0xff at offset 12"),
    ("latin1-charset", HF, "POST", "/invocations", b"{}", {"Content-Type": "application/json; charset=latin-1"},
     415, "UnsupportedMediaType", "unsupported charset 'latin-1'; send the JSON body as UTF-8"),
    ("csv", HF, "POST", "/invocations", b"q,d", {"Content-Type": "text/csv"}, 415, "UnsupportedMediaType",
     "unsupported content type 'text/csv'; this endpoint accepts application/json"),
    ("accept-csv", HF, "POST", "/invocations", b"{}", {**JSON, "Accept": "text/csv"}, 406, "NotAcceptable",
     "cannot answer in 'text/csv'; this endpoint answers application/json"),
    ("top-level-array", HF, "POST", "/invocations", b"[]", JSON, 400, "ValidationError",
     "hf-text-classification: body: expected a JSON object, got an array"),
    ("missing-inputs", HF, "POST", "/invocations", b"{}", JSON, 400, "ValidationError",
     "hf-text-classification: body: missing 'inputs'"),
    ("empty-inputs", HF, "POST", "/invocations", b'{"inputs": []}', JSON, 400, "ValidationError",
     "hf-text-classification: inputs: no documents to score"),
    ("missing-text-pair", HF, "POST", "/invocations", b'{"inputs": [{"text": "q"}]}', JSON, 400, "ValidationError",
     "hf-text-classification: inputs[0]: expected both 'text' and 'text_pair'"),
    ("number-text", HF, "POST", "/invocations", b'{"inputs": [{"text": 1, "text_pair": "d"}]}', JSON, 400,
     "ValidationError", "hf-text-classification: inputs[0].text: expected a string, got int"),
    ("unknown-key", HF, "POST", "/invocations", b'{"inputs": [], "top_k": 3}', JSON, 400, "ValidationError",
     "hf-text-classification: body: unknown key(s) top_k; expected inputs, parameters"),
    ("pair-of-three", "pairs-scores", "POST", "/invocations", b'{"pairs": [["q", "d", "x"]]}', JSON, 400,
     "ValidationError", "pairs-scores: pairs[0]: expected [query, document], got 3 item(s)"),
    ("topk-zero", "query-documents-topk", "POST", "/invocations", b'{"query": "q", "documents": ["d"], "topk": 0}',
     JSON, 400, "ValidationError", "query-documents-topk: topk: expected a positive integer, got 0"),
    ("texts-not-list", "tei-rerank", "POST", "/rerank", b'{"query": "q", "texts": "d"}', JSON, 400,
     "ValidationError", "tei-rerank: texts: expected a JSON array, got a string"),
    ("too-big", HF, "POST", "/invocations", b"x" * (LIMIT + 1), JSON, 413, "PayloadTooLarge",
     f"request body is {LIMIT + 1} bytes; this endpoint accepts at most {LIMIT} bytes (--max-body-bytes)"),
    ("get-invocations", HF, "GET", "/invocations", b"", {}, 405, "MethodNotAllowed", "/invocations accepts POST only"),
    ("post-ping", HF, "POST", "/ping", b"{}", JSON, 405, "MethodNotAllowed", "/ping accepts GET only"),
    ("unknown-path", HF, "POST", "/predict", b"{}", JSON, 404, "NotFound",
     "no such path '/predict'; POST to /invocations or /endpoints/<name>/invocations"),
    ("rerank-on-other-contract", HF, "POST", "/rerank", b"{}", JSON, 404, "NotFound",
     "no such path '/rerank'; POST to /invocations or /endpoints/<name>/invocations"),
    ("put", HF, "PUT", "/invocations", b"{}", JSON, 405, "MethodNotAllowed", "method PUT is not supported"),
]


@pytest.mark.parametrize(("contract", "method", "path", "body", "headers", "status", "kind", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(servers: dict[str, EndpointServer], contract: str, method: str, path: str,
                                    body: bytes, headers: dict[str, str], status: int, kind: str,
                                    message: str) -> None:
    server = servers[contract]
    assert request(server, method, path, body, headers) == (status, kind, {"message": message})
    assert request(server, "GET", "/ping")[0] == 200


def test_bad_input_on_the_runtime_route_is_a_424_model_error(servers: dict[str, EndpointServer]) -> None:
    status, kind, body = request(servers[HF], "POST", "/endpoints/os-rerank-cross-encoder/invocations",
                                 b'{"inputs": [', JSON)
    assert (status, kind, body["OriginalStatusCode"]) == (424, "ModelError", 400)
    assert json.loads(body["OriginalMessage"]) == {
        "message": "body is not valid JSON: Expecting value at line 1 column 13"}


def test_missing_content_type_is_taken_as_json(servers: dict[str, EndpointServer]) -> None:
    status, _, body = request(servers["pairs-scores"], "POST", "/invocations", b'{"pairs": [["q", "q"]]}')
    assert status == 200 and len(body["scores"]) == 1


def raw_exchange(server: EndpointServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_chunked_and_bad_length_are_refused_and_close(servers: dict[str, EndpointServer]) -> None:
    server = servers[HF]
    chunked = raw_exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"2\r\n{}\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 411 ")
    assert b'{"message": "chunked bodies are not supported; send Content-Length"}' in chunked
    bad = raw_exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ")
    assert b"invalid Content-Length '-5'" in bad
    garbage = raw_exchange(server, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert garbage.endswith(b"""\r\n\r\n{"message": "Bad request version ('all')"}""")
    assert request(server, "GET", "/ping")[0] == 200


def test_scorer_failure_is_a_500_and_the_server_survives() -> None:
    class Broken:
        name = "broken"

        def score(self, pairs: object) -> list[float]:
            raise RuntimeError("out of cheese")

    with EndpointServer(get_contract("pairs-scores"), Broken()) as server:
        assert request(server, "POST", "/invocations", b'{"pairs": [["q", "d"]]}', JSON) == (
            500, "InternalFailure", {"message": "scoring failed: RuntimeError: out of cheese"})
        assert request(server, "GET", "/ping")[0] == 200
