"""The local SageMaker-compatible endpoint: one HTTP server speaking the container and runtime protocols.

Routes (all on one server):

* `GET /ping` -> 200 `{"status": "Healthy", "scorer": ..., "contract": ..., "endpoint_name": ...}` (container), plus
  `embedder`, `embedding_contract`, `embedding_endpoint_name` and `dimension` when an embedding model is hosted.
* `POST /invocations` -> the contract's answer (the SageMaker container contract; no authentication, as inside
  SageMaker). Also `POST <contract.extra_path>` (`/rerank` for tei-rerank).
* With an embedding model (`embedder`, `embedding_contract`): `POST /endpoints/<embedding_endpoint_name>/invocations`
  is its runtime route, `POST <embedding_contract.extra_path>` (`/embed` for tei-embed) its container route, and
  `POST /invocations` is its own only when no reranker is hosted (`contract` and `scorer` None). One model per
  endpoint name, as in SageMaker; both share the limits, the authentication and the turns below.
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
                   record_path=None, embedder=None, embedding_contract=None,
                   embedding_endpoint_name="os-rerank-embedding")
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

`scorer` is anything with `name` and `score(pairs) -> list[float]` (see scorers.py), `embedder` anything with
`name`, `dimension` and `embed(texts) -> list[list[float]]` (see embedders.py); their work is serialized, in turns
when they offer `score_in_turns` / `embed_in_turns`. Modules: transport.py (HTTP), hosted.py (a model's answer
and the turns), records.py (what is kept of each request), faults.py (the failures `fail_next` injects), this one
(routes, authentication).

The server is the standard library's threading HTTP server with the checks above added. A well-kept ASGI server
(uvicorn, hypercorn) would bring an event loop, a dependency and its own parsing, but not what matters here: the
scorer is CPU-bound and serialized whatever the server, so the limits, the turns and the authentication order are
ours to write either way, and the one transport fault that cost time (an answer split over two writes) is fixed in
`_send`. Measured: 0.5 ms per call through the runtime route (bench/rerank_path_bench.py, endpoint alone).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..contracts import Contract
from ..embedding_contracts import EmbeddingContract
from .embedders import Embedder
from .faults import Faults
from .hosted import FairTurns as FairTurns  # re-exported, as the records' names below
from .hosted import HostedEmbedder, HostedReranker, check_media
from .records import ReceivedRequest as ReceivedRequest
from .records import RecordError as RecordError
from .records import check_record_file, record_line
from .scorers import Scorer
from .sigv4 import SigV4Error, check_scope, verify_sigv4
from .transport import Reply as Reply  # re-exported: callers build replies with these
from .transport import _Handler, _HTTPServer, runtime_endpoint_name
from .transport import error_reply as error_reply

DEFAULT_ENDPOINT_NAME = "os-rerank-cross-encoder"
DEFAULT_EMBEDDING_ENDPOINT_NAME = "os-rerank-embedding"
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
# On SIGTERM, requests already being answered get this long to finish (their answers and log lines) before exit.
_SHUTDOWN_GRACE = 10.0

logger = logging.getLogger("os_rerank.server")


class EndpointServer:
    """A SageMaker-compatible endpoint for a reranker, an embedder or both (see the module docstring)."""

    def __init__(
        self,
        contract: Contract | None,
        scorer: Scorer | None,
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
        embedder: Embedder | None = None,
        embedding_contract: EmbeddingContract | None = None,
        embedding_endpoint_name: str = DEFAULT_EMBEDDING_ENDPOINT_NAME,
    ) -> None:
        if (contract is None) != (scorer is None):
            raise ValueError("a reranker needs both a contract and a scorer")
        if (embedding_contract is None) != (embedder is None):
            raise ValueError("an embedding model needs both an embedding contract and an embedder")
        if scorer is None and embedder is None:
            raise ValueError("nothing to serve: pass a scorer, an embedder or both")
        if scorer is not None and embedder is not None and endpoint_name == embedding_endpoint_name:
            raise ValueError(f"the reranker and the embedding model both answer as {endpoint_name!r}; give them "
                             "different endpoint names")
        self.contract = contract
        self.scorer = scorer
        self.endpoint_name = endpoint_name
        self.embedder = embedder
        self.embedding_contract = embedding_contract
        self.embedding_endpoint_name = embedding_endpoint_name
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
            check_record_file(self.record_path)
        self._received: deque[ReceivedRequest] = deque()
        self._received_bytes = 0
        self._faults = Faults()
        self._state_lock = threading.Lock()
        self.turns = FairTurns()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.endpoint = self
        self._httpd.slots = threading.BoundedSemaphore(max_connections)
        self._httpd.max_connections = max_connections

    @property
    def reranker(self) -> HostedReranker | None:
        """The rerank model as it is now (tests swap `scorer` on a built server), if one is hosted."""
        if self.contract is None or self.scorer is None:
            return None
        return HostedReranker(self.contract, self.scorer)

    @property
    def embedding(self) -> HostedEmbedder | None:
        """The embedding model, if one is hosted."""
        if self.embedding_contract is None or self.embedder is None:
            return None
        return HostedEmbedder(self.embedding_contract, self.embedder)

    def hosted(self, kind: str) -> HostedReranker | HostedEmbedder:
        """The model a route names ("rerank" or "embedding")."""
        model = self.reranker if kind == "rerank" else self.embedding
        if model is None:
            raise ValueError(f"no {kind} model is hosted")
        return model

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
        self._faults.add(status, body, headers, count, error_type=error_type)

    def clear_received(self) -> None:
        with self._state_lock:
            self._received.clear()
            self._received_bytes = 0

    # --- request handling (called from handler threads) ----------------------------------------------------------

    def route(self, path: str) -> tuple[str, str | None] | None:
        """("runtime", endpoint name) / ("container", "rerank" or "embedding") for a model's path, else None.

        /invocations is the reranker's when one is hosted, else the embedding model's; each contract's extra path
        (/rerank, /embed) is its own model's."""
        name = runtime_endpoint_name(path)
        if name is not None:
            return "runtime", name
        reranker, embedding = self.reranker, self.embedding
        if path == "/invocations":
            return "container", "rerank" if reranker is not None else "embedding"
        if reranker is not None and path == reranker.extra_path:
            return "container", "rerank"
        if embedding is not None and path == embedding.extra_path:
            return "container", "embedding"
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
        return self.container_invoke(headers, body, model=name or "rerank")

    def _record(self, request: ReceivedRequest) -> None:
        with self._state_lock:
            self._received.append(request)
            self._received_bytes += len(request.body)
            while len(self._received) > _RECEIVED_MAX or (
                    self._received_bytes > _RECEIVED_MAX_BYTES and len(self._received) > 1):
                self._received_bytes -= len(self._received.popleft().body)
            if self.record_path is None:
                return
            text = record_line(request)
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

    def ping(self) -> Reply:
        body: dict[str, Any] = {"status": "Healthy"}
        if self.scorer is not None and self.contract is not None:
            body.update(scorer=self.scorer.name, contract=self.contract.name, endpoint_name=self.endpoint_name)
        if self.embedder is not None and self.embedding_contract is not None:
            body.update(embedder=self.embedder.name, embedding_contract=self.embedding_contract.name,
                        embedding_endpoint_name=self.embedding_endpoint_name, dimension=self.embedder.dimension)
        if self.record_failure is not None:
            body = {**body, "status": "Unhealthy", "reason": self.record_failure}
            return Reply(503, json.dumps(body, ensure_ascii=False).encode())
        return Reply(200, json.dumps(body, ensure_ascii=False).encode())

    def runtime_invoke(self, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """POST /endpoints/<name>/invocations once authenticated: find the endpoint, then invoke the container."""
        if name == self.endpoint_name and self.reranker is not None:
            model = "rerank"
        elif name == self.embedding_endpoint_name and self.embedding is not None:
            model = "embedding"
        else:
            return error_reply(404, f"Endpoint {name} of account {self.account_id} not found.", "ValidationError")
        fault = self._faults.take()
        if fault is not None:
            return fault
        reply = self._container_invoke(headers, body, model)
        if reply.status < 400:
            extra = (("x-Amzn-Invoked-Production-Variant", "AllTraffic"),)
            return Reply(reply.status, reply.body, reply.headers + extra, reply.pairs, reply.unit)
        kind = "client" if reply.status < 500 else "server"
        original = reply.body.decode("utf-8", "replace")
        return error_reply(
            424,
            f'Received {kind} error ({reply.status}) from primary with message "{original}". See '
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}#logEventViewer:"
            f"group=/aws/sagemaker/Endpoints/{name} in account {self.account_id} "
            "for more information.",
            "ModelError",
            OriginalStatusCode=reply.status,
            OriginalMessage=original,
            LogStreamArn=f"arn:aws:logs:{self.region}:{self.account_id}:log-group:/aws/sagemaker/Endpoints/"
            f"{name}",
        )

    def container_invoke(self, headers: Mapping[str, str], body: bytes, model: str = "rerank") -> Reply:
        """POST /invocations (and the contract's extra path): the model container's answer."""
        fault = self._faults.take()
        if fault is not None:
            return fault
        return self._container_invoke(headers, body, model)

    def _container_invoke(self, headers: Mapping[str, str], body: bytes, model: str) -> Reply:
        refused = check_media(headers)
        if refused is not None:
            return refused
        # One queue of turns for both models: they share the CPU, so a big embedding batch must not starve a rerank.
        return self.hosted(model).answer(body, max_items=self.max_documents, turn=self.turns)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
