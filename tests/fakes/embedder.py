"""A deterministic stand-in embedding endpoint for tests: hashed bag-of-words vectors over HTTP.

`HashedEmbedder` maps each word (lower-cased \\w+ run) to one of `dim` buckets by a stable hash and L2-normalises
the counts: texts sharing words are close, the same text always gets the same float32 vector, and no model or
torch is needed. `EmbeddingEndpoint` serves it SageMaker-style (`POST /endpoints/<name>/invocations`, and the
contract's extra path) in any embedding contract, records what it received, and can be told to fail. It checks
that a request is SigV4-signed (an Authorization header naming AWS4-HMAC-SHA256), not the signature itself: the
rerank endpoint's tests cover SigV4.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from os_rerank.contracts import ContractError
from os_rerank.embedding_contracts import EmbeddingContract, decode_texts

WORD = re.compile(r"\w+")
DIM = 16


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


class HashedEmbedder:
    """Hashed bag-of-words, L2-normalised, float32 values; an empty text gets a fixed unit vector."""

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def bucket(self, word: str) -> int:
        return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest(), "big") % self.dim

    def embed_one(self, text: str) -> list[float]:
        counts = [0.0] * self.dim
        for word in WORD.findall(text.lower()):
            counts[self.bucket(word)] += 1.0
        norm = math.sqrt(sum(c * c for c in counts))
        if norm == 0.0:  # cosine similarity needs a non-zero vector
            return [1.0] + [0.0] * (self.dim - 1)
        return [_f32(c / norm) for c in counts]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]


@dataclass(frozen=True)
class Received:
    path: str
    body: bytes

    def texts(self, contract: EmbeddingContract) -> list[str]:
        return decode_texts(contract, self.body)


class EmbeddingEndpoint:
    """A local embedding endpoint for one contract, on 127.0.0.1 (or `host`), port 0 = any free one."""

    def __init__(self, contract: EmbeddingContract, *, host: str = "127.0.0.1", port: int = 0,
                 endpoint_name: str = "os-rerank-embedding-test", embedder: HashedEmbedder | None = None) -> None:
        self.contract = contract
        self.endpoint_name = endpoint_name
        self.embedder = embedder or HashedEmbedder()
        self._received: list[Received] = []
        self._fail: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def invocation_url(self) -> str:
        return f"{self.url}/endpoints/{self.endpoint_name}/invocations"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def clear_received(self) -> None:
        with self._lock:
            self._received.clear()

    def received_texts(self) -> list[str]:
        """Every text of every invocation since the last clear, in arrival order; then clears."""
        with self._lock:
            got, self._received = list(self._received), []
        return [t for r in got for t in r.texts(self.contract)]

    def fail_next(self, status: int = 500, message: str = "injected failure") -> None:
        with self._lock:
            self._fail.append((status, message))

    def start(self) -> EmbeddingEndpoint:
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedding-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        paths = {f"/endpoints/{self.endpoint_name}/invocations", "/invocations"}
        if self.contract.extra_path:
            paths.add(self.contract.extra_path)
        if path.split("?")[0] not in paths:
            return 404, {"message": f"no such path {path}"}
        if "AWS4-HMAC-SHA256" not in headers.get("authorization", ""):
            return 403, {"message": "Missing Authentication Token"}
        with self._lock:
            self._received.append(Received(path, body))
            if self._fail:
                status, message = self._fail.pop(0)
                return status, {"message": message}
        try:
            texts = decode_texts(self.contract, body)
        except ContractError as exc:
            return 400, {"message": str(exc)}
        return 200, self.contract.build_response(self.embedder.embed(texts))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and the client's delayed
                # ACK add about 40 ms to every call on a kept-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = endpoint.answer(self.path, headers, body)
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
