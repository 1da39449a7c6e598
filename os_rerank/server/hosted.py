"""What an endpoint name answers: the model it hosts (a reranker or an embedder) under its contract, as a Reply.

The container's checks come first and are the same for every model (415 for a content type other than JSON in
UTF-8, 406 for an Accept that excludes JSON); then the model's own: the body read by its contract (400 with the
contract's one-line reason), the per-request bound (413), the work done in the server's turns (500 if the model
fails), the contract's answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts import Contract, ContractError, decode_body
from ..embedding_contracts import EmbeddingContract, decode_texts
from .embedders import Embedder
from .scorers import Scorer, Turn
from .transport import Reply, error_reply

logger = logging.getLogger("os_rerank.server")

_CONTAINER_ERROR_TYPES = {400: "ValidationError", 406: "NotAcceptable", 413: "PayloadTooLarge",
                          415: "UnsupportedMediaType", 500: "InternalFailure"}


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


def container_error(status: int, message: str) -> Reply:
    """The container's own error answer (what SageMaker's runtime then wraps in a 424 ModelError)."""
    return error_reply(status, message, _CONTAINER_ERROR_TYPES[status])


def check_media(headers: Mapping[str, str]) -> Reply | None:
    """The 415 / 406 for a request whose Content-Type or Accept is not JSON in UTF-8, else None."""
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type")
    if content_type is not None:
        media, _, params = content_type.partition(";")
        charset = _param(params, "charset")
        if media.strip().lower() != "application/json":
            return container_error(415, f"unsupported content type {content_type!r}; this endpoint accepts "
                                   "application/json")
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            return container_error(415, f"unsupported charset {charset!r}; send the JSON body as UTF-8")
    accept = lower.get("accept")
    if accept is not None and not _accepts_json(accept):
        return container_error(406, f"cannot answer in {accept!r}; this endpoint answers application/json")
    return None


@dataclass(frozen=True)
class HostedReranker:
    """A cross-encoder (or the lexical scorer) answering a rerank contract."""

    contract: Contract
    scorer: Scorer

    @property
    def extra_path(self) -> str | None:
        return self.contract.extra_path

    def answer(self, body: bytes, *, max_items: int, turn: Turn) -> Reply:
        try:
            request = decode_body(self.contract, body)
        except ContractError as exc:
            return container_error(400, str(exc))
        if len(request.pairs) > max_items:
            return container_error(413, f"request has {len(request.pairs)} documents; this endpoint scores at most "
                                   f"{max_items} per request (--max-documents)")
        try:
            scores = self._score(request.pairs, turn)
        except Exception as exc:  # a scorer bug must not take the server down; the client sees a 500
            logger.exception("scorer %s failed", self.scorer.name)
            return container_error(500, f"scoring failed: {type(exc).__name__}: {exc}")
        answer = self.contract.build_response(request, scores)
        return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), pairs=len(request.pairs))

    def _score(self, pairs: Any, turn: Turn) -> list[float]:
        in_turns = getattr(self.scorer, "score_in_turns", None)
        if in_turns is not None:
            return list(in_turns(pairs, turn))
        with turn():
            return self.scorer.score(pairs)


@dataclass(frozen=True)
class HostedEmbedder:
    """An embedding model answering an embedding contract: one unit-length vector per text, in input order."""

    contract: EmbeddingContract
    embedder: Embedder

    @property
    def extra_path(self) -> str | None:
        return self.contract.extra_path

    def answer(self, body: bytes, *, max_items: int, turn: Turn) -> Reply:
        try:
            texts = decode_texts(self.contract, body)
        except ContractError as exc:
            return container_error(400, str(exc))
        if len(texts) > max_items:
            return container_error(413, f"request has {len(texts)} texts; this endpoint embeds at most {max_items} "
                                   "per request (--max-documents)")
        try:
            vectors = self._embed(texts, turn)
        except Exception as exc:  # a model bug must not take the server down; the client sees a 500
            logger.exception("embedder %s failed", self.embedder.name)
            return container_error(500, f"embedding failed: {type(exc).__name__}: {exc}")
        answer = self.contract.build_response(vectors)
        return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), pairs=len(texts), unit="texts")

    def _embed(self, texts: list[str], turn: Turn) -> list[list[float]]:
        in_turns = getattr(self.embedder, "embed_in_turns", None)
        if in_turns is not None:
            return list(in_turns(texts, turn))
        with turn():
            return self.embedder.embed(texts)


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def _accepts_json(accept: str) -> bool:
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(r in ("*/*", "application/*", "application/json", "") for r in ranges)
