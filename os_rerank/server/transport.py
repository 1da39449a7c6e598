"""The HTTP transport of the local endpoint: strict framing, deadlines, connection limits, one write per answer.

What the server does with a request it has read is the endpoint's (app.EndpointServer, through the `Endpoint`
protocol below); this module knows only HTTP: one Content-Length of digits, no Transfer-Encoding, a body that must
arrive whole within the request deadline, idle keep-alive connections closed after the idle timeout, at most
`max_connections` served at once (the next gets 503 and is closed), and every answer, SageMaker-shaped JSON errors
included, sent head and body in one write (see `_Handler.disable_nagle_algorithm`). One log line per request.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

_WRITE_TIMEOUT = 30.0
# A body that will not be used (over the limit, unauthenticated) is read and thrown away, so the client sees the
# answer rather than a reset connection, up to this size; beyond it the connection is closed.
_DRAIN_LIMIT = 64 * 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")

logger = logging.getLogger("os_rerank.server")


class Endpoint(Protocol):
    """What the transport asks of the endpoint it serves (app.EndpointServer)."""

    max_body_bytes: int
    request_timeout: float
    idle_timeout: float

    def route(self, path: str) -> tuple[str, str | None] | None: ...

    def check_headers(self, headers: Mapping[str, str]) -> Reply | None: ...

    def handle_post(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply: ...

    def ping(self) -> Reply: ...


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, body bytes and headers; `pairs` is how many pairs were scored or texts embedded
    (`unit` says which), for the log."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    pairs: int | None = None
    unit: str = "pairs"


def error_reply(status: int, message: str, error_type: str, **extra: Any) -> Reply:
    """A SageMaker-shaped error: `{"message": ...}` plus `x-amzn-ErrorType`."""
    body = json.dumps({"message": message, **extra}, ensure_ascii=False).encode()
    return Reply(status, body, (("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)))


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
    endpoint: Endpoint
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
            logger.info("%s %s %d %s=%s %.1fms", method, path, reply.status, reply.unit, pairs, ms)


def runtime_endpoint_name(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "" and parts[1] == "endpoints" and parts[3] == "invocations" and parts[2]:
        return unquote(parts[2])
    return None
