"""The SageMaker inference handler os-rerank packages as `code/inference.py` in model.tar.gz, for every contract.

The Hugging Face inference toolkit in the Hugging Face DLC (`SAGEMAKER_PROGRAM=inference.py`) imports this file and
calls `model_fn(model_dir)` once, then `input_fn(body, content_type)`, `predict_fn(request, model)` and
`output_fn(prediction, accept)` per request. It answers exactly as `os-rerank serve` does, because it is the same
code: the request is read by `contracts.decode_body` with the contract `serve` uses, scored by `serve`'s
`CrossEncoderScorer` (input order kept, all n documents scored, each pair truncated to `max_length` tokens cutting
the document first, sigmoid of one logit or softmax P(label 1) of two) and answered by the contract's
`build_response`.

The same handler serves an embedding model when the SageMaker model's environment names an embedding contract
(`OS_RERANK_EMBEDDING_CONTRACT`, instead of `OS_RERANK_CONTRACT`): the texts are read by
`embedding_contracts.decode_texts`, embedded by `serve`'s `SentenceEmbedder` (each text alone, truncated to
`OS_RERANK_MAX_LENGTH` tokens, default the model's own; mean pooling over the attention mask, L2 normalisation)
and answered by the embedding contract's `build_response`; `OS_RERANK_MAX_DOCUMENTS` bounds the texts per request.

Configured by the environment of the SageMaker model (`endpoint deploy` sets it; the names are the constants
below): `OS_RERANK_CONTRACT` (which contract this endpoint speaks; required unless OS_RERANK_EMBEDDING_CONTRACT is
set), `OS_RERANK_MAX_LENGTH` (512),
`OS_RERANK_BATCH_SIZE` (32), `OS_RERANK_MAX_DOCUMENTS` (1000), `OS_RERANK_BACKEND` (`auto`: ONNX Runtime when the
model directory holds an ONNX export and onnxruntime is importable, else torch, which the DLC has; torch runs on
the GPU when the instance has one).

This file imports `os_rerank.contracts`, `os_rerank.embedding_contracts`, `os_rerank.server.scorers` and
`os_rerank.server.embedders` only: `endpoint deploy` copies those files, unchanged, next to it under
`code/os_rerank/`, so the container needs nothing from PyPI. Python 3.10 (the DLC's).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from os_rerank.contracts import CONTRACT_NAMES, Contract, ContractError, ScoreRequest, decode_body, get_contract
from os_rerank.embedding_contracts import (
    EMBEDDING_CONTRACT_NAMES,
    EmbeddingContract,
    decode_texts,
    get_embedding_contract,
)
from os_rerank.server.embedders import SentenceEmbedder
from os_rerank.server.scorers import BACKEND_CHOICES, CrossEncoderScorer, ScorerError, onnx_file

CONTRACT_ENV = "OS_RERANK_CONTRACT"
EMBEDDING_CONTRACT_ENV = "OS_RERANK_EMBEDDING_CONTRACT"
MAX_LENGTH_ENV = "OS_RERANK_MAX_LENGTH"
BATCH_SIZE_ENV = "OS_RERANK_BATCH_SIZE"
MAX_DOCUMENTS_ENV = "OS_RERANK_MAX_DOCUMENTS"
BACKEND_ENV = "OS_RERANK_BACKEND"
JSON = "application/json"


class HandlerError(ValueError):
    """A request or the handler's configuration is wrong. The toolkit answers a ValueError from input_fn or
    model_fn as a 400 with this message (its handle() wraps every exception in PredictionException(msg, 400))."""


@dataclass(frozen=True)
class Handler:
    """What model_fn returns and predict_fn receives: the contract, the scorer and the per-request bound."""

    contract: Contract
    scorer: CrossEncoderScorer
    max_documents: int


@dataclass(frozen=True)
class EmbeddingHandler:
    """What model_fn returns for an embedding model: the embedding contract, the embedder and the text bound."""

    contract: EmbeddingContract
    embedder: SentenceEmbedder
    max_texts: int


def _int_env(environ: Any, name: str, default: int, low: int) -> int:
    text = environ.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < low:
        raise HandlerError(f"{name}={text!r}: expected an integer of at least {low}")
    return int(text)


def _backend(model_dir: Path, requested: str) -> str:
    """`auto` picks ONNX Runtime for an exported model only when onnxruntime is installed (the DLC has torch, not
    onnxruntime); otherwise torch, which `CrossEncoderScorer` imports lazily."""
    if requested not in BACKEND_CHOICES:
        raise HandlerError(f"{BACKEND_ENV}={requested!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    if requested != "auto":
        return requested
    if onnx_file(model_dir) is not None and importlib.util.find_spec("onnxruntime") is not None:
        return "onnx"
    if importlib.util.find_spec("torch") is not None:
        return "torch"
    return "onnx"  # neither: the scorer says what is missing


def _device(backend: str) -> str | None:
    """"cuda" for the torch backend on a GPU instance (ml.g*, ml.p*), else None (the CPU)."""
    if backend != "torch":
        return None
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


def model_fn(model_dir: str) -> Handler | EmbeddingHandler:
    """The contract named by OS_RERANK_CONTRACT and the cross-encoder in `model_dir` (the unpacked model.tar.gz,
    or the Hub snapshot the toolkit downloaded for HF_MODEL_ID). One parameter: the toolkit passes its context to
    a second one."""
    return load_handler(model_dir, os.environ)


def load_handler(model_dir: str | os.PathLike[str], environ: Any) -> Handler | EmbeddingHandler:
    """model_fn with the environment passed in: an embedding handler when OS_RERANK_EMBEDDING_CONTRACT is set."""
    name = environ.get(CONTRACT_ENV)
    if environ.get(EMBEDDING_CONTRACT_ENV):
        if name:
            raise HandlerError(f"both {CONTRACT_ENV} and {EMBEDDING_CONTRACT_ENV} are set; a SageMaker model "
                               "serves one model: keep the one this endpoint answers")
        return load_embedding_handler(model_dir, environ)
    if not name:
        raise HandlerError(f"{CONTRACT_ENV} is not set; set it on the SageMaker model to one of "
                           f"{', '.join(CONTRACT_NAMES)} (or {EMBEDDING_CONTRACT_ENV} to one of "
                           f"{', '.join(EMBEDDING_CONTRACT_NAMES)} for an embedding model)")
    try:
        contract = get_contract(name)
    except ContractError as exc:
        raise HandlerError(f"{CONTRACT_ENV}: {exc}") from None
    directory = Path(model_dir)
    if not (directory / "config.json").is_file():
        raise HandlerError(f"{directory}: no config.json; package a model directory into model.tar.gz or set "
                           "HF_MODEL_ID on the SageMaker model")
    backend = _backend(directory, environ.get(BACKEND_ENV) or "auto")
    try:
        scorer = CrossEncoderScorer(directory, max_length=_int_env(environ, MAX_LENGTH_ENV, 512, 8),
                                    batch_size=_int_env(environ, BATCH_SIZE_ENV, 32, 1), backend=backend,
                                    device=_device(backend))
    except (ScorerError, ImportError) as exc:
        raise HandlerError(f"cannot load the cross-encoder from {directory}: {exc}") from exc
    return Handler(contract, scorer, _int_env(environ, MAX_DOCUMENTS_ENV, 1000, 1))


def load_embedding_handler(model_dir: str | os.PathLike[str], environ: Any) -> EmbeddingHandler:
    """The embedding contract named by OS_RERANK_EMBEDDING_CONTRACT and the embedding model in `model_dir`."""
    try:
        contract = get_embedding_contract(environ.get(EMBEDDING_CONTRACT_ENV) or "")
    except ContractError as exc:
        raise HandlerError(f"{EMBEDDING_CONTRACT_ENV}: {exc}") from None
    directory = Path(model_dir)
    if not (directory / "config.json").is_file():
        raise HandlerError(f"{directory}: no config.json; package a model directory into model.tar.gz or set "
                           "HF_MODEL_ID on the SageMaker model")
    backend = _backend(directory, environ.get(BACKEND_ENV) or "auto")
    if backend not in ("onnx", "torch"):
        raise HandlerError(f"{BACKEND_ENV}={backend!r}: an embedding model runs with onnx or torch")
    max_length = _int_env(environ, MAX_LENGTH_ENV, 0, 8) or None
    try:
        embedder = SentenceEmbedder(directory, backend=backend, max_length=max_length,
                                    batch_size=_int_env(environ, BATCH_SIZE_ENV, 32, 1), device=_device(backend))
    except (ScorerError, ImportError) as exc:
        raise HandlerError(f"cannot load the embedding model from {directory}: {exc}") from exc
    return EmbeddingHandler(contract, embedder, _int_env(environ, MAX_DOCUMENTS_ENV, 1000, 1))


def _media(content_type: str | None) -> tuple[str, str | None]:
    media, _, params = (content_type or JSON).partition(";")
    charset = None
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def input_fn(input_data: bytes | bytearray | str, content_type: str | None) -> bytes | str:
    """The body, once its content type is JSON in UTF-8. It is read in predict_fn, which has the model and so the
    contract (the toolkit gives input_fn the body and its content type only)."""
    media, charset = _media(content_type)
    if media != JSON:
        raise HandlerError(f"unsupported content type {content_type!r}; this endpoint accepts application/json")
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise HandlerError(f"unsupported charset {charset!r}; send the JSON body as UTF-8")
    return bytes(input_data) if isinstance(input_data, bytearray) else input_data


def read_texts(body: bytes | str, model: EmbeddingHandler) -> list[str]:
    """The texts read as `serve` reads them (embedding_contracts.decode_texts), within the model's text bound."""
    try:
        texts = decode_texts(model.contract, body)
    except ContractError as exc:
        raise HandlerError(str(exc)) from None
    if len(texts) > model.max_texts:
        raise HandlerError(f"request has {len(texts)} texts; this endpoint embeds at most {model.max_texts} per "
                           f"request ({MAX_DOCUMENTS_ENV})")
    return texts


def read_request(body: bytes | str, model: Handler) -> ScoreRequest:
    """The request read as `serve` reads it (contracts.decode_body), within the model's document bound."""
    try:
        request = decode_body(model.contract, body)
    except ContractError as exc:
        raise HandlerError(str(exc)) from None
    if len(request.pairs) > model.max_documents:
        raise HandlerError(f"request has {len(request.pairs)} documents; this endpoint scores at most "
                           f"{model.max_documents} per request ({MAX_DOCUMENTS_ENV})")
    return request


def predict_fn(body: bytes | str, model: Handler | EmbeddingHandler) -> Any:
    """The contract's answer: every pair scored, in input order, then shaped (and for ranked contracts sorted); for
    an embedding model, one unit-length vector per text, in input order."""
    if isinstance(model, EmbeddingHandler):
        return model.contract.build_response(model.embedder.embed(read_texts(body, model)))
    request = read_request(body, model)
    scores = model.scorer.score(request.pairs)
    return model.contract.build_response(request, scores)


def output_fn(prediction: Any, accept: str | None) -> str:
    """The answer as JSON text (what `serve` sends: UTF-8, non-ASCII kept)."""
    ranges = [part.split(";")[0].strip().lower() for part in (accept or JSON).split(",")]
    if not any(r in ("*/*", "application/*", JSON, "") for r in ranges):
        raise HandlerError(f"cannot answer in {accept!r}; this endpoint answers application/json")
    return json.dumps(prediction, ensure_ascii=False)
