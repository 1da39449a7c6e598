"""The HTTP side of the double: a real server on 127.0.0.1, routing, request recording and fault injection."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .state import ApiError, load_shape

READ_ONLY_POST_SUFFIXES = ("/_search", "/_count")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double saw it. `status` is 0 when the connection was dropped without an answer."""

    method: str
    path: str
    status: int
    query: str = ""
    body: bytes = b""

    @property
    def is_write(self) -> bool:
        """PUT/POST/DELETE, except the read-only POSTs (`_search`, `_count`, `_predict`)."""
        if self.method not in ("PUT", "POST", "DELETE"):
            return False
        read_only = self.path.endswith(READ_ONLY_POST_SUFFIXES) or "/_predict" in self.path
        return not (self.method == "POST" and read_only)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: bytes
    headers: dict[str, str]
    match: re.Match[str] | None = None

    def json(self, default: Any = None) -> Any:
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, "parse_exception", f"Failed to parse content to map: {exc}") from exc

    def flag(self, name: str) -> bool:
        return self.params.get(name, "false") in ("", "true")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or str/bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Fault:
    method: str
    path_regex: re.Pattern[str]
    times: int
    status: int = 0
    body: Any = None
    drop: bool = False
    applied: bool = False  # drop only: run the request, then lose the answer

    def matches(self, method: str, path: str) -> bool:
        return self.times != 0 and self.method in ("*", method) and self.path_regex.search(path) is not None


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        for m in method.split("|"):
            self.routes.append((m, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, re.Match[str]] | None:
        for m, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and m == method:
                return handler, match
        return None


def default_fault_body(status: int) -> Any:
    if status == 429:
        return load_shape("errors")["rejected_execution"]
    if status == 503:
        return load_shape("errors")["unavailable"]
    return ApiError(status, "exception", f"injected failure ({status})").body()


class HttpFront:
    """Serves `router` on 127.0.0.1:<random port>; records every request; applies injected faults first.

    `after` runs after every dispatched request (the double uses it to note state for its lagging searches).
    """

    def __init__(self, router: Router, after: Callable[[], None] | None = None) -> None:
        self.router = router
        self.after = after
        # Answers a request before the routes do (401/403), or None to let it through.
        self.gate: Callable[[str, str, bytes, dict[str, str]], Response | None] | None = None
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        front = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _serve(self) -> None:
                front.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="opensearch-double", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int, query: str, body: bytes) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, status, query, body))

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path = unquote(split.path) or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        method = h.command
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        fault = self._take_fault(method, path)
        if fault is not None and fault.drop:
            if fault.applied:
                self._dispatch(method, path, params, body, dict(h.headers))
            self._record(method, path, 0, split.query, body)
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            body_out = fault.body if fault.body is not None else default_fault_body(fault.status)
            response = Response(fault.status, body_out)
        else:
            response = self._dispatch(method, path, params, body, dict(h.headers))
        self._record(method, path, response.status, split.query, body)
        self._write(h, method, response)

    def _dispatch(self, method: str, path: str, params: dict[str, str], body: bytes,
                  headers: dict[str, str]) -> Response:
        if self.gate is not None:  # the security plugin, when the double has one (security.py)
            refused = self.gate(method, path, body, headers)
            if refused is not None:
                return refused
        resolved = self.router.resolve(method, path)
        if resolved is None:
            return Response(400, {"error": f"no handler found for uri [{path}] and method [{method}]"})
        handler, match = resolved
        request = Request(method, path, params, body, {k.lower(): v for k, v in headers.items()}, match)
        try:
            return handler(request)
        except ApiError as exc:
            return Response(exc.status, exc.body())
        finally:
            if self.after is not None:
                self.after()

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, method: str, response: Response) -> None:
        if response.body is None:
            data = b""
        elif isinstance(response.body, bytes):
            data = response.body
        elif isinstance(response.body, str):
            data = response.body.encode("utf-8")
        else:
            data = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        h.send_response(response.status)
        content_type = "application/json; charset=UTF-8"
        if isinstance(response.body, str):
            content_type = "text/plain; charset=UTF-8"
        h.send_header("content-type", response.headers.get("content-type", content_type))
        for key, value in response.headers.items():
            if key != "content-type":
                h.send_header(key, value)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)
