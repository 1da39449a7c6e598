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
stops the server. Bodies over `max_body_bytes` get 413 before they are parsed or recorded.

Programmatic API (stable; other tests depend on it):

    EndpointServer(contract, scorer, *, host="127.0.0.1", port=0, endpoint_name="os-rerank-cross-encoder",
                   credentials=None, max_body_bytes=6 * 1024 * 1024, account_id="123456789012",
                   record_path=None)
        .start() -> EndpointServer        serve on a background thread (also `with EndpointServer(...) as s:`)
        .stop() -> None
        .serve_forever() -> None          block in this thread until stop() / Ctrl-C / SIGTERM (main thread only)
        .url -> str                       "http://127.0.0.1:PORT"; pass it to boto3 as endpoint_url
        .port -> int
        .received -> list[ReceivedRequest]  every POST, in arrival order: method, path, headers, exact body bytes
        .clear_received() -> None
        .fail_next(status, body=None, headers=None, count=1, *, error_type=None) -> None
            the next `count` scoring requests (after authentication and the endpoint-name check) get this response
            instead of a score: e.g. fail_next(400, error_type="ThrottlingException") or fail_next(503)
    ReceivedRequest(method: str, path: str, headers: dict[str, str], body: bytes) with .text (body as UTF-8)

`scorer` is anything with `name` and `score(pairs) -> list[float]` (see scorers.py); calls are serialized.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..contracts import Contract, ContractError
from .scorers import Scorer
from .sigv4 import SigV4Error, verify_sigv4

DEFAULT_ENDPOINT_NAME = "os-rerank-cross-encoder"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's own payload limit for real-time endpoints
DEFAULT_ACCOUNT_ID = "123456789012"
# A body over the limit is read and thrown away (so the client sees the 413, not a reset connection) up to this size.
_DRAIN_LIMIT = 64 * 1024 * 1024

logger = logging.getLogger("os_rerank.server")


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
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        account_id: str = DEFAULT_ACCOUNT_ID,
        record_path: str | Path | None = None,
    ) -> None:
        self.contract = contract
        self.scorer = scorer
        self.endpoint_name = endpoint_name
        self.credentials = dict(credentials) if credentials else None
        self.max_body_bytes = max_body_bytes
        self.account_id = account_id
        self.record_path = Path(record_path) if record_path is not None else None
        self.received: list[ReceivedRequest] = []
        self._faults: list[_Fault] = []
        self._state_lock = threading.Lock()
        self._score_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.endpoint = self

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
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="os-rerank-serve", daemon=True)
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

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test hooks ---------------------------------------------------------------------------------------------

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
            self.received.clear()

    # --- request handling (called from handler threads) ----------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._state_lock:
            self.received.append(request)
            if self.record_path is not None:
                line: dict[str, Any] = {"method": request.method, "path": request.path,
                                        "content_type": request.headers.get("content-type")}
                try:
                    line["body"] = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    line["body_base64"] = base64.b64encode(request.body).decode()
                text = json.dumps(line, ensure_ascii=False)
                # Keep one record per line for readers that split on every Unicode line break, not just \n.
                text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
                with self.record_path.open("a", encoding="utf-8") as fh:
                    fh.write(text + "\n")

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
        return Reply(200, json.dumps(body, ensure_ascii=False).encode())

    def runtime_invoke(self, method: str, raw_path: str, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """POST /endpoints/<name>/invocations: authenticate, find the endpoint, then invoke the container."""
        if self.credentials is not None:
            try:
                verify_sigv4(method, raw_path, headers, body, self.credentials)
            except SigV4Error as exc:
                return error_reply(exc.status, exc.message, exc.error_type)
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
            f"https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEventViewer:"
            f"group=/aws/sagemaker/Endpoints/{self.endpoint_name} in account {self.account_id} "
            "for more information.",
            "ModelError",
            OriginalStatusCode=reply.status,
            OriginalMessage=original,
            LogStreamArn=f"arn:aws:logs:us-west-2:{self.account_id}:log-group:/aws/sagemaker/Endpoints/"
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
        if not body.strip():
            return fail(400, f"body is empty; expected JSON like {self.contract.example_request}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return fail(400, f"body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}")
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            return fail(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        try:
            request = self.contract.parse_request(payload)
        except ContractError as exc:
            return fail(400, f"{self.contract.name}: {exc}")
        try:
            with self._score_lock:
                scores = self.scorer.score(request.pairs)
        except Exception as exc:  # a scorer bug must not take the server down; the client sees a 500
            logger.exception("scorer %s failed", self.scorer.name)
            return fail(500, f"scoring failed: {type(exc).__name__}: {exc}")
        answer = self.contract.build_response(request, scores)
        return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), pairs=len(request.pairs))


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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    endpoint: EndpointServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's and ML Commons' connection pools expect
    server: _HTTPServer
    server_version = "os-rerank-serve"
    # TCP_NODELAY, and each answer in one write (_send): an answer split into a head and a body waits for the
    # client's delayed acknowledgement of the first part, which cost every call through ML Commons ~40 ms.
    disable_nagle_algorithm = True
    # A client that stalls mid-request is dropped. Longer than the 60 s for which the AWS SDK's connection pool
    # (ML Commons' client) keeps an idle connection, so the server never closes one the client is about to reuse.
    timeout = 90

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one line per request is logged by _send instead

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
        if path == "/ping":
            reply = endpoint.ping()
        elif self._is_post_route(path):
            reply = error_reply(405, f"{path} accepts POST only", "MethodNotAllowed")
        else:
            reply = error_reply(404, f"no such path {path!r}; try GET /ping or POST /invocations", "NotFound")
        self._send(reply, started)

    def do_POST(self) -> None:
        started = time.perf_counter()
        endpoint = self.server.endpoint
        body = self._read_body()
        if isinstance(body, Reply):
            self._send(body, started)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        endpoint._record(ReceivedRequest("POST", self.path, headers, body))
        path = urlsplit(self.path).path
        name = _runtime_endpoint_name(path)
        if name is not None:
            reply = endpoint.runtime_invoke("POST", self.path, name, headers, body)
        elif path == "/invocations" or path == endpoint.contract.extra_path:
            reply = endpoint.container_invoke(headers, body)
        elif path == "/ping":
            reply = error_reply(405, "/ping accepts GET only", "MethodNotAllowed")
        else:
            reply = error_reply(404, f"no such path {path!r}; POST to /invocations or /endpoints/<name>/invocations",
                                "NotFound")
        self._send(reply, started)

    def _unsupported(self) -> None:
        started = time.perf_counter()
        self._discard_body()
        self._send(error_reply(405, f"method {self.command} is not supported", "MethodNotAllowed"), started)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _unsupported

    def _is_post_route(self, path: str) -> bool:
        return path == "/invocations" or path == self.server.endpoint.contract.extra_path or (
            _runtime_endpoint_name(path) is not None)

    def _read_body(self) -> bytes | Reply:
        """The request body, or the error Reply when it is missing, chunked or over the limit."""
        limit = self.server.endpoint.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return error_reply(411, "chunked bodies are not supported; send Content-Length", "LengthRequired")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return error_reply(400, f"invalid Content-Length {length_text!r}", "ValidationError")
        if length > limit:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            else:
                self.close_connection = True
            return error_reply(413, f"request body is {length} bytes; this endpoint accepts at most {limit} bytes "
                               "(--max-body-bytes)", "PayloadTooLarge")
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= _DRAIN_LIMIT:
            self._drain(length)
        elif length:
            self.close_connection = True

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)

    def _send(self, reply: Reply, started: float) -> None:
        try:
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
