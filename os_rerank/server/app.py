"""The local SageMaker-compatible endpoint: one HTTP server speaking the container and runtime protocols.

Routes (all on one server):

* `GET /ping` -> 200 `{"status": "Healthy", "scorer": ..., "contract": ..., "endpoint_name": ...}` (container).
* `POST /invocations` -> the contract's answer (the SageMaker container contract; no authentication, as inside
  SageMaker). Also `POST <contract.extra_path>` (`/rerank` for tei-rerank).
* `POST /endpoints/<name>/invocations` -> the SageMaker runtime API as `boto3.client("sagemaker-runtime")` calls it.
  With `credentials`, AWS Signature V4 is verified (403 + `x-amzn-ErrorType` otherwise); without, it is not checked.
  An unknown `<name>` is 404. A request the model side rejects (bad JSON, wrong shape, wrong content type) comes back
  as real SageMaker reports container errors: 424 `ModelError` whose message quotes the container's status and body
  (`OriginalStatusCode`, `OriginalMessage` are in the body too). The container routes return that status directly
  (400 bad body, 415 content type, 406 Accept, 500 scorer failure).

Every error body is SageMaker-shaped JSON, `{"message": ...}`, with an `x-amzn-ErrorType` header. Bad input never
stops the server.

Safe to expose (each refusal names the limit and the `serve` flag that sets it):

* With `credentials`, every POST route needs a valid SigV4 signature, and everything a signature can be checked for
  without the body (key, algorithm, scope: date, region, service; clock skew) is checked before the body is read.
  Nothing unauthenticated is parsed, scored, kept in `received` or written to the record file.
* Work per request is bounded: `max_body_bytes` (413 before the body is read), `max_documents` (413), and the
  scorer's own per-pair token limit (a cross-encoder truncates each pair to `--max-length` tokens).
* Fairness: scorers work in turns, first come first served (scorers.Scorer), so a small request waits for at most
  one batch of a big one, not all of it.
* Time and connections: a request must arrive whole (request line, headers, body) within `request_timeout` seconds
  of its first byte (408 or a closed connection otherwise); a keep-alive connection may idle `idle_timeout` seconds;
  at most `max_connections` are served at once, the next one gets 503 and is closed.
* Strict HTTP: one Content-Length of digits only (conflicting duplicates, signs, underscores refused), no
  Transfer-Encoding, a body shorter than its Content-Length is refused, never scored.
* The record file is opened at start (RecordError if it cannot be written); if writing fails later, /ping answers
  503 with the reason, so a health check sees it, and scoring goes on.

Programmatic API (stable; other tests depend on it):

    EndpointServer(contract, scorer, *, host="127.0.0.1", port=0, endpoint_name="os-rerank-cross-encoder",
                   credentials=None, region="us-west-2", max_body_bytes=6 * 1024 * 1024, max_documents=1000,
                   max_connections=64, request_timeout=30.0, idle_timeout=90.0, account_id="123456789012",
                   record_path=None)
        .start() -> EndpointServer        serve on a background thread (also `with EndpointServer(...) as s:`)
        .stop() -> None
        .serve_forever() -> None          block in this thread until stop() / Ctrl-C / SIGTERM (main thread only)
        .url -> str                       "http://127.0.0.1:PORT"; pass it to boto3 as endpoint_url
        .port -> int
        .received -> list[ReceivedRequest]  every authenticated POST, in arrival order: method, path, headers,
                                          exact body bytes (the latest 1,000, at most 64 MiB of bodies)
        .clear_received() -> None
        .fail_next(status, body=None, headers=None, count=1, *, error_type=None) -> None
            the next `count` scoring requests (after authentication and the endpoint-name check) get this response
            instead of a score: e.g. fail_next(400, error_type="ThrottlingException") or fail_next(503)
    ReceivedRequest(method: str, path: str, headers: dict[str, str], body: bytes) with .text (body as UTF-8)

`scorer` is anything with `name` and `score(pairs) -> list[float]` (see scorers.py); its work is serialized, in
turns when it offers `score_in_turns`.

The server is the standard library's threading HTTP server with the checks above added. A well-kept ASGI server
(uvicorn, hypercorn) would bring an event loop, a dependency and its own parsing, but not what matters here: the
scorer is CPU-bound and serialized whatever the server, so the limits, the turns and the authentication order are
ours to write either way, and the one transport fault that cost time (an answer split over two writes) is fixed in
`_send`. Measured: 0.5 ms per call through the runtime route (bench/rerank_path_bench.py, endpoint alone).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import re
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..contracts import Contract, ContractError, decode_body
from .scorers import Scorer
from .sigv4 import SigV4Error, check_scope, verify_sigv4

DEFAULT_ENDPOINT_NAME = "os-rerank-cross-encoder"
DEFAULT_REGION = "us-west-2"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's own payload limit for real-time endpoints
# ML Commons' rerank sends every hit of the search; 1,000 covers any page a person reads and bounds a request's work.
DEFAULT_MAX_DOCUMENTS = 1000
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_REQUEST_TIMEOUT = 30.0  # from a request's first byte to the end of its body: 6 MiB at 200 KiB/s
# Longer than the 60 s for which the AWS SDK's connection pool (ML Commons' client) keeps an idle connection, so the
# server never closes one the client is about to reuse.
DEFAULT_IDLE_TIMEOUT = 90.0
DEFAULT_ACCOUNT_ID = "123456789012"
_RECEIVED_MAX = 1000
_RECEIVED_MAX_BYTES = 64 * 1024 * 1024
_WRITE_TIMEOUT = 30.0
# On SIGTERM, requests already being answered get this long to finish (their answers and log lines) before exit.
_SHUTDOWN_GRACE = 10.0
# A body that will not be used (over the limit, unauthenticated) is read and thrown away, so the client sees the
# answer rather than a reset connection, up to this size; beyond it the connection is closed.
_DRAIN_LIMIT = 64 * 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")

logger = logging.getLogger("os_rerank.server")


class RecordError(Exception):
    """The record file cannot be written (raised at start, so a bad --record path is refused before serving)."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST the server received: the exact body bytes, before any parsing."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, body bytes and headers; `pairs` is how many pairs were scored (for the log)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    pairs: int | None = None


def error_reply(status: int, message: str, error_type: str, **extra: Any) -> Reply:
    """A SageMaker-shaped error: `{"message": ...}` plus `x-amzn-ErrorType`."""
    body = json.dumps({"message": message, **extra}, ensure_ascii=False).encode()
    return Reply(status, body, (("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)))


_CONTAINER_ERROR_TYPES = {400: "ValidationError", 406: "NotAcceptable", 413: "PayloadTooLarge",
                          415: "UnsupportedMediaType", 500: "InternalFailure"}


@dataclass
class _Fault:
    reply: Reply
    remaining: int


class FairTurns:
    """A lock granted in the order it was asked for (threading.Lock promises no order: a thread that releases it
    and asks again at once usually wins, so a big request would starve a small one)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


class EndpointServer:
    """A SageMaker-compatible endpoint for one contract and one scorer (see the module docstring)."""

    def __init__(
        self,
        contract: Contract,
        scorer: Scorer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        endpoint_name: str = DEFAULT_ENDPOINT_NAME,
        credentials: Mapping[str, str] | None = None,
        region: str = DEFAULT_REGION,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_documents: int = DEFAULT_MAX_DOCUMENTS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        account_id: str = DEFAULT_ACCOUNT_ID,
        record_path: str | Path | None = None,
    ) -> None:
        self.contract = contract
        self.scorer = scorer
        self.endpoint_name = endpoint_name
        self.credentials = dict(credentials) if credentials else None
        self.region = region
        self.max_body_bytes = max_body_bytes
        self.max_documents = max_documents
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.account_id = account_id
        self.record_path = Path(record_path) if record_path is not None else None
        self.record_failure: str | None = None
        if self.record_path is not None:
            try:
                with self.record_path.open("a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise RecordError(f"cannot write the record file {self.record_path}: {exc.strerror or exc}") from None
        self._received: deque[ReceivedRequest] = deque()
        self._received_bytes = 0
        self._faults: list[_Fault] = []
        self._state_lock = threading.Lock()
        self.turns = FairTurns()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.endpoint = self
        self._httpd.slots = threading.BoundedSemaphore(max_connections)
        self._httpd.max_connections = max_connections

    # --- life cycle ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> EndpointServer:
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            # A short poll so stop() returns in a tenth of a second, not the stdlib's half second.
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="os-rerank-serve", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown() if self._thread is not None else None
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C or SIGTERM (`docker stop`), then close the socket."""
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self._httpd.server_close()
            self._httpd.drain(_SHUTDOWN_GRACE)

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test hooks ---------------------------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """The authenticated POSTs received, oldest first (the latest 1,000, at most 64 MiB of bodies)."""
        with self._state_lock:
            return list(self._received)

    def fail_next(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
        *,
        error_type: str | None = None,
    ) -> None:
        """Answer the next `count` scoring requests with `status` and `body` (default `{"message": ...}`)."""
        if body is None:
            raw = json.dumps({"message": f"Injected failure ({status} {error_type or ''})".replace(" )", ")")}).encode()
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(dict(body)).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if error_type:
            hdrs["x-amzn-ErrorType"] = error_type
        with self._state_lock:
            self._faults.append(_Fault(Reply(status, raw, tuple(hdrs.items())), count))

    def clear_received(self) -> None:
        with self._state_lock:
            self._received.clear()
            self._received_bytes = 0

    # --- request handling (called from handler threads) ----------------------------------------------------------

    def route(self, path: str) -> tuple[str, str | None] | None:
        """("runtime", endpoint name) / ("container", None) for a scoring path, else None."""
        name = _runtime_endpoint_name(path)
        if name is not None:
            return "runtime", name
        if path == "/invocations" or path == self.contract.extra_path:
            return "container", None
        return None

    def check_headers(self, headers: Mapping[str, str]) -> Reply | None:
        """The 403 for a request whose headers already fail authentication (read before its body), else None."""
        if self.credentials is None:
            return None
        try:
            check_scope(headers, self.credentials, region=self.region)
        except SigV4Error as exc:
            return error_reply(exc.status, exc.message, exc.error_type)
        return None

    def handle_post(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """A scoring POST whose body has been read: authenticate, record, then answer."""
        route = self.route(urlsplit(raw_path).path)
        if route is None:
            raise ValueError(f"not a scoring path: {raw_path!r}")
        if self.credentials is not None:
            try:
                verify_sigv4("POST", raw_path, headers, body, self.credentials, region=self.region)
            except SigV4Error as exc:
                return error_reply(exc.status, exc.message, exc.error_type)
        self._record(ReceivedRequest("POST", raw_path, dict(headers), body))
        kind, name = route
        if kind == "runtime":
            return self.runtime_invoke(name or "", headers, body)
        return self.container_invoke(headers, body)

    def _record(self, request: ReceivedRequest) -> None:
        with self._state_lock:
            self._received.append(request)
            self._received_bytes += len(request.body)
            while len(self._received) > _RECEIVED_MAX or (
                    self._received_bytes > _RECEIVED_MAX_BYTES and len(self._received) > 1):
                self._received_bytes -= len(self._received.popleft().body)
            if self.record_path is None:
                return
            line: dict[str, Any] = {"method": request.method, "path": request.path,
                                    "content_type": request.headers.get("content-type")}
            try:
                line["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                line["body_base64"] = base64.b64encode(request.body).decode()
            text = json.dumps(line, ensure_ascii=False)
            # Keep one record per line for readers that split on every Unicode line break, not just \n.
            text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
            try:
                with self.record_path.open("a", encoding="utf-8") as fh:
                    fh.write(text + "\n")
            except OSError as exc:
                if self.record_failure is None:
                    logger.error("recording to %s failed: %s; /ping now answers 503", self.record_path,
                                 exc.strerror or exc)
                self.record_failure = f"recording to {self.record_path} failed: {exc.strerror or exc}"
            else:
                self.record_failure = None

    def _take_fault(self) -> Reply | None:
        with self._state_lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault.reply

    def ping(self) -> Reply:
        body = {"status": "Healthy", "scorer": self.scorer.name, "contract": self.contract.name,
                "endpoint_name": self.endpoint_name}
        if self.record_failure is not None:
            body = {**body, "status": "Unhealthy", "reason": self.record_failure}
            return Reply(503, json.dumps(body, ensure_ascii=False).encode())
        return Reply(200, json.dumps(body, ensure_ascii=False).encode())

    def runtime_invoke(self, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """POST /endpoints/<name>/invocations once authenticated: find the endpoint, then invoke the container."""
        if name != self.endpoint_name:
            return error_reply(404, f"Endpoint {name} of account {self.account_id} not found.", "ValidationError")
        fault = self._take_fault()
        if fault is not None:
            return fault
        reply = self._container_invoke(headers, body)
        if reply.status < 400:
            extra = (("x-Amzn-Invoked-Production-Variant", "AllTraffic"),)
            return Reply(reply.status, reply.body, reply.headers + extra, reply.pairs)
        kind = "client" if reply.status < 500 else "server"
        original = reply.body.decode("utf-8", "replace")
        return error_reply(
            424,
            f'Received {kind} error ({reply.status}) from primary with message "{original}". See '
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}#logEventViewer:"
            f"group=/aws/sagemaker/Endpoints/{self.endpoint_name} in account {self.account_id} "
            "for more information.",
            "ModelError",
            OriginalStatusCode=reply.status,
            OriginalMessage=original,
            LogStreamArn=f"arn:aws:logs:{self.region}:{self.account_id}:log-group:/aws/sagemaker/Endpoints/"
            f"{self.endpoint_name}",
        )

    def container_invoke(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """POST /invocations (and the contract's extra path): the model container's answer."""
        fault = self._take_fault()
        if fault is not None:
            return fault
        return self._container_invoke(headers, body)

    def _container_invoke(self, headers: Mapping[str, str], body: bytes) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}

        def fail(status: int, message: str) -> Reply:
            return error_reply(status, message, _CONTAINER_ERROR_TYPES[status])

        content_type = lower.get("content-type")
        if content_type is not None:
            media, _, params = content_type.partition(";")
            charset = _param(params, "charset")
            if media.strip().lower() != "application/json":
                return fail(415, f"unsupported content type {content_type!r}; this endpoint accepts application/json")
            if charset is not None and charset.lower() not in ("utf-8", "utf8"):
                return fail(415, f"unsupported charset {charset!r}; send the JSON body as UTF-8")
        accept = lower.get("accept")
        if accept is not None and not _accepts_json(accept):
            return fail(406, f"cannot answer in {accept!r}; this endpoint answers application/json")
        try:
            request = decode_body(self.contract, body)
        except ContractError as exc:
            return fail(400, str(exc))
        if len(request.pairs) > self.max_documents:
            return fail(413, f"request has {len(request.pairs)} documents; this endpoint scores at most "
                        f"{self.max_documents} per request (--max-documents)")
        try:
            scores = self._score(request.pairs)
        except Exception as exc:  # a scorer bug must not take the server down; the client sees a 500
            logger.exception("scorer %s failed", self.scorer.name)
            return fail(500, f"scoring failed: {type(exc).__name__}: {exc}")
        answer = self.contract.build_response(request, scores)
        return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), pairs=len(request.pairs))

    def _score(self, pairs: Any) -> list[float]:
        in_turns = getattr(self.scorer, "score_in_turns", None)
        if in_turns is not None:
            return list(in_turns(pairs, self.turns))
        with self.turns():
            return self.scorer.score(pairs)


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def _accepts_json(accept: str) -> bool:
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(r in ("*/*", "application/*", "application/json", "") for r in ranges)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _busy_reply(limit: int) -> bytes:
    body = json.dumps({"message": f"server busy: {limit} connections already open (--max-connections); "
                                  "retry shortly"}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"x-amzn-ErrorType: ServiceUnavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    endpoint: EndpointServer
    slots: threading.BoundedSemaphore
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.busy = 0  # requests being answered now (idle keep-alive connections not counted)
        self.busy_changed = threading.Condition()

    def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the requests being answered to finish."""
        with self.busy_changed:
            self.busy_changed.wait_for(lambda: self.busy == 0, timeout)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, up to max_connections; the next one is answered 503 and closed at once."""
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(_busy_reply(self.max_connections))
            except OSError:
                pass
            self.shutdown_request(request)
            logger.info("- - 503 (connection refused: --max-connections)")
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, not a traceback on stderr, for a connection that failed outside a request's answer."""
        logger.warning("connection from %s failed", client_address[0] if client_address else "?", exc_info=True)


class _DeadlineReader(io.RawIOBase):
    """The socket's input, with a deadline for every read (the stdlib's timeout bounds each recv, not a request:
    a client sending a byte every few seconds would hold its thread forever)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's and ML Commons' connection pools expect
    server: _HTTPServer
    server_version = "os-rerank-serve"
    # TCP_NODELAY, and each answer in one write (_send): an answer split into a head and a body waits for the
    # client's delayed acknowledgement of the first part, which cost every call through ML Commons ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the stdlib's reader, replaced by one with deadlines (the socket stays open)
        self._reader = _DeadlineReader(self.connection)
        self._buffered = io.BufferedReader(self._reader, 1 << 16)
        self.rfile = self._buffered

    def handle_one_request(self) -> None:
        """Wait up to idle_timeout for a request to begin, then allow it request_timeout to arrive in full."""
        endpoint = self.server.endpoint
        self._reader.deadline = time.monotonic() + endpoint.idle_timeout
        try:
            if not self._buffered.peek(1):
                self.close_connection = True
                return
        except OSError:  # TimeoutError included: an idle keep-alive connection is simply closed
            self.close_connection = True
            return
        self._reader.deadline = time.monotonic() + endpoint.request_timeout
        with self.server.busy_changed:
            self.server.busy += 1
        try:
            super().handle_one_request()
        finally:
            with self.server.busy_changed:
                self.server.busy -= 1
                self.server.busy_changed.notify_all()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one line per request is logged by _send instead

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.info("%s: " + format, self.client_address[0], *args)  # e.g. "Request timed out"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors the stdlib detects (bad request line, headers too long) in SageMaker's JSON shape."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # unparseable request line: still answer with a status line
            self.request_version = "HTTP/1.1"
        text = message or self.responses.get(code, ("error",))[0]
        self._send(error_reply(code, text, "BadRequest" if code < 500 else "InternalFailure"), time.perf_counter())

    def do_GET(self) -> None:
        started = time.perf_counter()
        endpoint = self.server.endpoint
        path = urlsplit(self.path).path
        length = self._content_length()
        if isinstance(length, Reply):
            self._send(length, started)
            return
        self._discard(length)
        if path == "/ping":
            reply = endpoint.ping()
        elif endpoint.route(path) is not None:
            reply = error_reply(405, f"{path} accepts POST only", "MethodNotAllowed")
        else:
            reply = error_reply(404, f"no such path {path!r}; try GET /ping or POST /invocations", "NotFound")
        self._send(reply, started)

    def do_POST(self) -> None:
        started = time.perf_counter()
        endpoint = self.server.endpoint
        path = urlsplit(self.path).path
        length = self._content_length()
        if isinstance(length, Reply):
            self._send(length, started)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if endpoint.route(path) is None:
            self._discard(length)
            if path == "/ping":
                reply = error_reply(405, "/ping accepts GET only", "MethodNotAllowed")
            else:
                reply = error_reply(404, f"no such path {path!r}; POST to /invocations or "
                                    "/endpoints/<name>/invocations", "NotFound")
            self._send(reply, started)
            return
        refused = endpoint.check_headers(headers)  # before the body: an unsigned request costs only its headers
        if refused is None and length > endpoint.max_body_bytes:
            refused = error_reply(413, f"request body is {length} bytes; this endpoint accepts at most "
                                  f"{endpoint.max_body_bytes} bytes (--max-body-bytes)", "PayloadTooLarge")
        if refused is not None:
            self._discard(length)
            self._send(refused, started)
            return
        body = self._read_body(length)
        if isinstance(body, Reply):
            self._send(body, started)
            return
        try:
            reply = endpoint.handle_post(self.path, headers, body)
        except Exception as exc:  # a bug here must cost one 500, not the connection and a traceback
            logger.exception("POST %s failed", path)
            reply = error_reply(500, f"internal error: {type(exc).__name__}", "InternalFailure")
        self._send(reply, started)

    def _unsupported(self) -> None:
        started = time.perf_counter()
        length = self._content_length()
        if isinstance(length, Reply):
            self._send(length, started)
            return
        self._discard(length)
        self._send(error_reply(405, f"method {self.command} is not supported", "MethodNotAllowed"), started)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _unsupported

    def _content_length(self) -> int | Reply:
        """The body's length from the one Content-Length header, or the error Reply (and the connection closes:
        after a framing error, where the next request starts is unknown)."""
        if self.headers.get_all("Transfer-Encoding"):
            self.close_connection = True
            return error_reply(411, "chunked bodies are not supported; send Content-Length"
                               if "chunked" in ",".join(self.headers.get_all("Transfer-Encoding") or []).lower() else
                               "Transfer-Encoding is not supported; send Content-Length", "LengthRequired")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        distinct = {v.strip() for v in values}
        if len(distinct) > 1:
            self.close_connection = True
            return error_reply(400, f"conflicting Content-Length headers: {', '.join(sorted(distinct))}",
                               "ValidationError")
        (text,) = distinct
        if not _DIGITS.fullmatch(text):
            self.close_connection = True
            return error_reply(400, f"invalid Content-Length {text!r}", "ValidationError")
        return int(text)

    def _read_body(self, length: int) -> bytes | Reply:
        """Exactly `length` bytes, or the error Reply: a body that ends early or arrives too slowly is never scored."""
        chunks: list[bytes] = []
        got = 0
        try:
            while got < length:
                chunk = self._buffered.read1(min(length - got, 1 << 20))  # what has arrived, so counts are exact
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            self.close_connection = True
            timeout = self.server.endpoint.request_timeout
            return error_reply(408, f"request not received in full within {timeout:g} s (--request-timeout): "
                               f"{got} of {length} body bytes arrived", "RequestTimeout")
        except OSError:
            self.close_connection = True
            return error_reply(400, f"connection failed after {got} of {length} body bytes", "ValidationError")
        if got < length:
            self.close_connection = True
            return error_reply(400, f"body ended after {got} of {length} bytes (Content-Length)", "ValidationError")
        return b"".join(chunks)

    def _discard(self, length: int) -> None:
        """Read and drop a body that will not be used, or close the connection when it is too big to bother."""
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
        except OSError:
            self.close_connection = True
        if length > 0:
            self.close_connection = True

    def _send(self, reply: Reply, started: float) -> None:
        try:
            self.connection.settimeout(_WRITE_TIMEOUT)
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            # Head and body in one write (see disable_nagle_algorithm): the stdlib's end_headers() would send the
            # head on its own.
            buffered: list[bytes] = getattr(self, "_headers_buffer", [])
            head = b"".join(buffered) + b"\r\n"
            buffered.clear()
            self.wfile.write(head if self.command == "HEAD" else head + reply.body)
        except OSError:  # the client went away; nothing left to tell it
            self.close_connection = True
        finally:
            ms = (time.perf_counter() - started) * 1000
            pairs = "-" if reply.pairs is None else reply.pairs
            method, path = self.command or "-", getattr(self, "path", "-")
            logger.info("%s %s %d pairs=%s %.1fms", method, path, reply.status, pairs, ms)


def _runtime_endpoint_name(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "" and parts[1] == "endpoints" and parts[3] == "invocations" and parts[2]:
        return unquote(parts[2])
    return None
