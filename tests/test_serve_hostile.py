"""The endpoint against a hostile client: sizes, depth, framing, slow clients, connection floods, authentication
scopes, recorder failures, fairness. Each case has an exact status (and message where one is promised).

Timeouts here are made short (request_timeout 0.5 s, idle 0.5 s) so slow-client cases finish quickly; they assert
what happens, never how fast.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from os_rerank.contracts import CONTRACTS, get_contract
from os_rerank.server import app
from os_rerank.server.app import EndpointServer, RecordError
from os_rerank.server.lexical import LexicalScorer

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

AKID, SECRET = "AKIDHOSTILETEST00001", "hostile-secret"
NAME = "os-rerank-cross-encoder"
RUNTIME = f"/endpoints/{NAME}/invocations"
JSON = {"Content-Type": "application/json"}
PAIRS = json.dumps({"pairs": [["capital", "the capital city"], ["capital", "a river"]]}).encode()


@pytest.fixture(scope="module")
def open_server() -> Iterator[EndpointServer]:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), max_body_bytes=4096, max_documents=5,
                        request_timeout=0.5, idle_timeout=0.5) as server:
        yield server


@pytest.fixture
def signed_server(tmp_path: Path) -> Iterator[EndpointServer]:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), credentials={AKID: SECRET},
                        region="eu-central-1", max_body_bytes=4096, record_path=tmp_path / "record.jsonl",
                        request_timeout=2) as server:
        yield server


def call(server: EndpointServer, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def raw(server: EndpointServer, data: bytes, *, half_close: bool = False, wait: float = 10) -> bytes:
    """Send bytes, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_and_message(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["message"]


def signed_headers(body: bytes, *, path: str = RUNTIME, region: str = "eu-central-1", service: str = "sagemaker",
                   key: str = AKID, secret: str = SECRET, when: dt.datetime | None = None,
                   port: int = 0) -> dict[str, str]:
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}{path}", data=body,
                         headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials(key, secret), service, region)
    if when is None:
        signer.add_auth(request)
    else:  # add_auth always signs "now"; these are its steps with another time
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        signer._modify_request_before_signing(request)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        signer._inject_signature_to_request(request, signer.signature(string_to_sign, request))
    return dict(request.headers.items())


def post_signed(server: EndpointServer, body: bytes, **kw: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = signed_headers(body, port=server.port, **kw)
    return call(server, "POST", RUNTIME, body, headers)


# --- sizes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_too_many_documents_is_413_naming_the_limit(name: str) -> None:
    contract = CONTRACTS[name]
    with EndpointServer(contract, LexicalScorer(), max_documents=3) as server:
        body = json.dumps(contract.build_request("q", ["a", "b", "c", "d"])).encode()
        status, answer, headers = call(server, "POST", "/invocations", body, JSON)
        assert (status, headers["x-amzn-errortype"]) == (413, "PayloadTooLarge")
        assert answer == {"message": "request has 4 documents; this endpoint scores at most 3 per request "
                                     "(--max-documents)"}
        body = json.dumps(contract.build_request("q", ["a", "b", "c"])).encode()
        assert call(server, "POST", "/invocations", body, JSON)[0] == 200


def test_body_over_the_limit_is_413_before_it_is_read(open_server: EndpointServer) -> None:
    status, answer, _ = call(open_server, "POST", "/invocations", b" " * 4097, JSON)
    assert (status, answer["message"]) == (413, "request body is 4097 bytes; this endpoint accepts at most 4096 "
                                                "bytes (--max-body-bytes)")


def test_a_huge_content_length_is_413_and_the_connection_closes(open_server: EndpointServer) -> None:
    answer = raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
    assert status_and_message(answer)[0] == 413
    assert b"Connection: close" in answer


def test_a_megabyte_query_over_a_thousand_documents_is_scored_once_per_query() -> None:
    """The TEI shape repeats one query for every document: it is tokenized once, not 1,000 times."""
    contract = CONTRACTS["tei-rerank"]
    query = "capital " * 130_000  # ~1 MB
    with EndpointServer(contract, LexicalScorer(), max_body_bytes=2 << 20) as server:
        body = json.dumps(contract.build_request(query, [f"capital number {i}" for i in range(1000)])).encode()
        status, answer, _ = call(server, "POST", "/invocations", body, JSON)
    assert status == 200 and len(answer) == 1000


# --- depth and numbers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 3000, "body nests arrays or objects too deeply to read"),
    (b'{"a":' * 3000, "body nests arrays or objects too deeply to read"),
    (b'{"pairs": [["q", "d"]], "x": ' + b"9" * 5000 + b"}",
     "body holds an integer too long to read (over 4300 digits)"),
], ids=["arrays", "objects", "5000-digit-integer"])
def test_deep_or_numeric_bombs_get_a_json_400(body: bytes, message: str) -> None:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer()) as server:
        status, answer, headers = call(server, "POST", "/invocations", body, JSON)
        assert (status, headers["x-amzn-errortype"], answer) == (400, "ValidationError", {"message": message})
        assert call(server, "POST", "/invocations", PAIRS, JSON)[0] == 200  # and it keeps serving


def test_a_5000_digit_float_is_refused_by_the_contract() -> None:
    body = b'{"pairs": [["q", ' + b"1." + b"0" * 5000 + b"]]}"
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer()) as server:
        status, answer, _ = call(server, "POST", "/invocations", body, JSON)
    assert (status, answer["message"]) == (400, "pairs-scores: pairs[0][1]: expected a string, got float")


# --- framing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length_headers", "message"), [
    (b"Content-Length: 4_1\r\n", "invalid Content-Length '4_1'"),
    (b"Content-Length: +5\r\n", "invalid Content-Length '+5'"),
    (b"Content-Length: 0x10\r\n", "invalid Content-Length '0x10'"),
    (b"Content-Length: 1e3\r\n", "invalid Content-Length '1e3'"),
    (b"Content-Length: 5, 5\r\n", "invalid Content-Length '5, 5'"),
    (b"Content-Length: 1234567890123456789012\r\n", "invalid Content-Length '1234567890123456789012'"),
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", "conflicting Content-Length headers: 5, 6"),
], ids=["underscore", "plus", "hex", "exponent", "list", "too-long", "conflicting"])
def test_a_lenient_content_length_is_400_and_closes(open_server: EndpointServer, length_headers: bytes,
                                                    message: str) -> None:
    answer = raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\n" + length_headers + b"\r\n{}")
    assert status_and_message(answer) == (400, message)
    assert b"Connection: close" in answer


def test_two_identical_content_lengths_are_one(open_server: EndpointServer) -> None:
    length = str(len(PAIRS)).encode()
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: " + length +
                     b"\r\nContent-Length: " + length + b"\r\n\r\n" + PAIRS)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(("te", "message"), [
    (b"Transfer-Encoding: chunked\r\n", "chunked bodies are not supported; send Content-Length"),
    (b"Transfer-Encoding: gzip\r\n", "Transfer-Encoding is not supported; send Content-Length"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "chunked bodies are not supported; send Content-Length"),
], ids=["chunked", "gzip", "with-content-length"])
def test_transfer_encodings_are_411_and_close(open_server: EndpointServer, te: bytes, message: str) -> None:
    answer = raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\n" + te + b"\r\n2\r\n{}\r\n0\r\n\r\n")
    assert status_and_message(answer) == (411, message)


def test_a_truncated_body_is_400_and_never_scored(open_server: EndpointServer) -> None:
    open_server.clear_received()
    answer = raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + PAIRS[:10],
                 half_close=True)
    assert status_and_message(answer) == (400, "body ended after 10 of 100 bytes (Content-Length)")
    assert open_server.received == []


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "Request-URI Too Long"),
    (b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", 431,
     "Too many headers"),
    (b"GET /ping HTTP/1.1\r\nX-Long: " + b"y" * 70000 + b"\r\n\r\n", 431, "Line too long"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "Invalid HTTP version (2.0)"),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method ('BREW')"),
], ids=["long-url", "many-headers", "long-header", "http2-preface", "unknown-method"])
def test_protocol_errors_get_json_answers(open_server: EndpointServer, data: bytes, status: int,
                                          message: str) -> None:
    got_status, got_message = status_and_message(raw(open_server, data))
    assert got_status == status and got_message.startswith(message)


# --- slow clients and floods --------------------------------------------------------------------------------------


def test_a_body_that_stalls_is_408(open_server: EndpointServer) -> None:
    answer = raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"pa")
    assert status_and_message(answer) == (408, "request not received in full within 0.5 s (--request-timeout): "
                                               "4 of 50 body bytes arrived")


def test_headers_that_stall_are_dropped(open_server: EndpointServer) -> None:
    started = time.monotonic()
    assert raw(open_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\n") == b""
    assert time.monotonic() - started < 8  # dropped at the request deadline, not held for the client's 10 s


def test_a_trickling_client_cannot_stretch_its_deadline(open_server: EndpointServer) -> None:
    """One byte every 0.1 s keeps every recv short; the request deadline still ends it."""
    request = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(PAIRS)).encode() + \
        b"\r\n\r\n" + PAIRS
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=10) as sock:
        answer = b""
        for i in range(len(request)):
            try:
                sock.sendall(request[i:i + 1])
            except OSError:
                break
            time.sleep(0.1)
            if i > 25:  # 2.5 seconds: five times the 0.5 s deadline
                break
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_keep_alive_connection_is_closed(open_server: EndpointServer) -> None:
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert sock.recv(65536) == b""  # closed after idle_timeout, not held


def test_connections_beyond_the_limit_get_503_then_room_again() -> None:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), max_connections=2) as server:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        try:
            for sock in held:  # make sure both are being served (a request answered on each)
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            answer = raw(server, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_and_message(answer) == (503, "server busy: 2 connections already open "
                                                       "(--max-connections); retry shortly")
        finally:
            for sock in held:
                sock.close()
        for _ in range(100):  # the slots come back when the handler threads notice the closed sockets
            if call(server, "GET", "/ping")[0] == 200:
                break
            time.sleep(0.05)
        assert call(server, "GET", "/ping")[0] == 200


# --- authentication -------------------------------------------------------------------------------------------


def record_lines(server: EndpointServer) -> list[str]:
    assert server.record_path is not None
    return server.record_path.read_text(encoding="utf-8").splitlines()


def test_a_correct_signature_is_scored_and_recorded(signed_server: EndpointServer) -> None:
    status, answer, _ = post_signed(signed_server, PAIRS)
    assert status == 200 and len(answer["scores"]) == 2
    assert len(signed_server.received) == 1 and len(record_lines(signed_server)) == 1


@pytest.mark.parametrize(("kw", "kind", "message"), [
    ({"region": "us-east-1"}, "InvalidSignatureException",
     "Credential should be scoped to a valid region: 'us-east-1' is not this endpoint's region 'eu-central-1' "
     "(serve --region)."),
    ({"service": "execute-api"}, "InvalidSignatureException",
     "Credential should be scoped to correct service: 'sagemaker'."),
    ({"key": "AKIDSOMEONEELSE00000"}, "UnrecognizedClientException",
     "The security token included in the request is invalid."),
    ({"secret": "wrong"}, "InvalidSignatureException",
     "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
     "Key and signing method. Consult the service documentation for details."),
    ({"when": dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)}, "InvalidSignatureException",
     "Signature expired"),
    ({"when": dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=20)}, "InvalidSignatureException",
     "Signature not yet current"),
], ids=["region", "service", "unknown-key", "wrong-secret", "stale", "future"])
def test_a_bad_scope_or_signature_is_403_and_costs_nothing(signed_server: EndpointServer, kw: dict[str, Any],
                                                           kind: str, message: str) -> None:
    status, answer, headers = post_signed(signed_server, PAIRS, **kw)
    assert (status, headers["x-amzn-errortype"]) == (403, kind)
    assert answer["message"].startswith(message)
    assert signed_server.received == [] and record_lines(signed_server) == []


def test_a_scope_date_other_than_x_amz_date_is_403(signed_server: EndpointServer) -> None:
    headers = signed_headers(PAIRS, port=signed_server.port)
    today = headers["X-Amz-Date"][:8]
    headers["Authorization"] = headers["Authorization"].replace(f"/{today}/", "/20200101/")
    status, answer, _ = call(signed_server, "POST", RUNTIME, PAIRS, headers)
    assert (status, answer["message"]) == (403, "Credential should be scoped to a valid date: '20200101' does not "
                                                "match X-Amz-Date.")


@pytest.mark.parametrize(("authorization", "kind"), [
    (None, "MissingAuthenticationTokenException"),
    ("Bearer abc", "IncompleteSignatureException"),
    (f"AWS4-HMAC-SHA256 Credential={AKID}/x, SignedHeaders=host, Signature={'0' * 64}",
     "IncompleteSignatureException"),
], ids=["none", "bearer", "short-scope"])
def test_a_missing_or_garbled_authorization_is_403(signed_server: EndpointServer, authorization: str | None,
                                                   kind: str) -> None:
    headers = dict(JSON, **({"Authorization": authorization} if authorization else {}))
    status, _, got = call(signed_server, "POST", RUNTIME, PAIRS, headers)
    assert (status, got["x-amzn-errortype"]) == (403, kind)
    assert signed_server.received == [] and record_lines(signed_server) == []


def test_a_body_changed_after_signing_is_403(signed_server: EndpointServer) -> None:
    headers = signed_headers(PAIRS, port=signed_server.port)
    other = PAIRS.replace(b"river", b"lake!")
    assert call(signed_server, "POST", RUNTIME, other, headers)[0] == 403
    assert signed_server.received == []


def test_authentication_comes_before_the_size_limit(signed_server: EndpointServer) -> None:
    """An unsigned body over the limit is told 403, not 413: its headers were judged before its size or body."""
    status, answer, _ = call(signed_server, "POST", RUNTIME, b" " * 5000, JSON)
    assert (status, answer["message"]) == (403, "Missing Authentication Token")


def test_unsigned_megabytes_are_neither_kept_nor_recorded(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), credentials={AKID: SECRET},
                        record_path=record) as server:
        body = b'{"pairs": [["q", "' + b"x" * (5 << 20) + b'"]]}'
        for _ in range(3):
            assert call(server, "POST", RUNTIME, body, JSON)[0] == 403
        assert server.received == [] and record.stat().st_size == 0


def test_container_routes_need_the_signature_too(signed_server: EndpointServer) -> None:
    for path in ("/invocations",):
        status, answer, _ = call(signed_server, "POST", path, PAIRS, JSON)
        assert (status, answer["message"]) == (403, "Missing Authentication Token")
    headers = signed_headers(PAIRS, path="/invocations", port=signed_server.port)
    assert call(signed_server, "POST", "/invocations", PAIRS, headers)[0] == 200


# --- the recorder ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing-dir/record.jsonl", "."], ids=["missing-directory", "a-directory"])
def test_an_unwritable_record_path_is_refused_at_start(tmp_path: Path, where: str) -> None:
    with pytest.raises(RecordError, match="^cannot write the record file "):
        EndpointServer(get_contract("pairs-scores"), LexicalScorer(), record_path=tmp_path / where)


def test_a_recorder_that_fails_later_shows_in_ping_and_scoring_goes_on(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), record_path=record) as server:
        assert call(server, "POST", "/invocations", PAIRS, JSON)[0] == 200
        record.unlink()
        record.mkdir()  # the file is gone and its name now names a directory: every append fails
        assert call(server, "POST", "/invocations", PAIRS, JSON)[0] == 200
        status, ping, _ = call(server, "GET", "/ping")
        assert (status, ping["status"]) == (503, "Unhealthy")
        assert ping["reason"].startswith(f"recording to {record} failed: ")
        shutil.rmtree(record)
        assert call(server, "POST", "/invocations", PAIRS, JSON)[0] == 200
        assert call(server, "GET", "/ping")[0] == 200  # recovered: the next record was written
        assert len(record.read_text().splitlines()) == 1


def test_received_keeps_only_the_latest(monkeypatch: pytest.MonkeyPatch, open_server: EndpointServer) -> None:
    monkeypatch.setattr(app, "_RECEIVED_MAX", 3)
    open_server.clear_received()
    for i in range(5):
        body = json.dumps({"pairs": [["q", f"document {i}"]]}).encode()
        assert call(open_server, "POST", "/invocations", body, JSON)[0] == 200
    assert [json.loads(r.body)["pairs"][0][1] for r in open_server.received] == [
        "document 2", "document 3", "document 4"]


# --- fairness ---------------------------------------------------------------------------------------------------


class _Turnstile:
    """A scorer whose batches log their turns, one pair per batch; the big request's first batch waits until the
    small request has asked for its turn."""

    name = "turnstile"

    def __init__(self, server_turns: Any) -> None:
        self.log: list[str] = []
        self.turns = server_turns
        self.big_started = threading.Event()

    def score_in_turns(self, pairs: Sequence[tuple[str, str]], turn: Any) -> list[float]:
        for query, _ in pairs:
            with turn():
                self.log.append(query)
                if query == "big" and not self.big_started.is_set():
                    self.big_started.set()
                    for _ in range(500):  # until the small request holds a ticket (the big one holds ticket 0)
                        if self.turns._next_ticket >= 2:
                            break
                        time.sleep(0.01)
        return [0.5] * len(pairs)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [0.5] * len(pairs)


def test_a_small_request_waits_for_one_batch_of_a_big_one_not_all_of_it() -> None:
    server = EndpointServer(get_contract("pairs-scores"), LexicalScorer())
    scorer = _Turnstile(server.turns)
    server.scorer = scorer
    with server:
        big = json.dumps({"pairs": [["big", f"d{i}"] for i in range(6)]}).encode()
        small = json.dumps({"pairs": [["small", "d"]]}).encode()
        results: dict[str, int] = {}
        worker = threading.Thread(target=lambda: results.setdefault("big", call(server, "POST", "/invocations",
                                                                                big, JSON)[0]))
        worker.start()
        assert scorer.big_started.wait(10)
        results["small"] = call(server, "POST", "/invocations", small, JSON)[0]
        worker.join(30)
    assert results == {"big": 200, "small": 200}
    assert scorer.log == ["big", "small", "big", "big", "big", "big", "big"]

