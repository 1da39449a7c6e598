"""The endpoint contracts, described once.

A contract is how one kind of SageMaker endpoint wants (query, documents) and how it answers. The same `Contract`
serves every consumer: the connector templates (Painless file names, `request_body`), the validator (`build_request`,
`parse_response`) and the local endpoint (`parse_request`, `build_response`). No format has a second spelling.

Pure: no I/O beyond nothing; safe to import without boto3 or opensearch-py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Every connector sends the body its pre-process script built, whole. The scripts hand ML Commons the request as
# one JSON *text* parameter: ML Commons passes a string that is itself a JSON object through unescaped and
# substitutes it verbatim, so the bytes the endpoint receives are exactly the JSON the script wrote (integers stay
# integers; `topk` is not turned into 4.0 as a parsed map would be). See painless/README.md.
REQUEST_BODY = "${parameters.body}"


class ContractError(ValueError):
    """A request or response does not have the shape its contract requires; the message says where."""


@dataclass(frozen=True)
class ScoreRequest:
    """What an endpoint is asked: (query, document) pairs in input order, and how many results to return."""

    pairs: tuple[tuple[str, str], ...]
    topk: int | None = None


@dataclass(frozen=True)
class Contract:
    """One endpoint contract: both directions of the wire format, and the Painless scripts that speak it."""

    name: str
    summary: str
    example_request: str
    example_response: str
    build_request: Callable[[str, Sequence[str]], Any]
    parse_response: Callable[[Any, int], list[float]]
    parse_request: Callable[[Any], ScoreRequest]
    build_response: Callable[[ScoreRequest, Sequence[float]], Any]
    # Files under painless/: the connector's pre- and post-process scripts for this contract.
    pre_process_file: str
    post_process_file: str
    # The local endpoint also answers on this path, besides /invocations (TEI serves /rerank).
    extra_path: str | None = None

    @property
    def request_body(self) -> str:
        return REQUEST_BODY


def decode_body(contract: Contract, body: bytes | str) -> ScoreRequest:
    """The request in `body` (UTF-8 JSON) read with `contract`: what `serve` and the SageMaker handler both score.

    ContractError says what is wrong in one line: empty, not UTF-8, not JSON, nested too deep, an integer over
    Python's 4,300-digit limit, or the contract's own shape error (prefixed with the contract's name).
    """
    payload = load_body(body, contract.example_request)
    try:
        return contract.parse_request(payload)
    except ContractError as exc:
        raise ContractError(f"{contract.name}: {exc}") from None
    except RecursionError:
        raise ContractError("body nests arrays or objects too deeply to read") from None


def load_body(body: bytes | str, example: str) -> Any:
    """`body` (UTF-8 JSON) parsed; ContractError in one line when it is empty, not UTF-8, not JSON, nested too
    deep or holds an integer over Python's 4,300-digit limit (`example` shows what was expected)."""
    if isinstance(body, bytes):
        if not body.strip():
            raise ContractError(f"body is empty; expected JSON like {example}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(f"body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
                                ) from None
    else:
        text = body
    if not text.strip():
        raise ContractError(f"body is empty; expected JSON like {example}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ContractError("body nests arrays or objects too deeply to read") from None
    except ValueError:  # an integer literal over Python's 4,300-digit conversion limit
        raise ContractError("body holds an integer too long to read (over 4300 digits)") from None


# --- small shape checks shared by the codecs -------------------------------------------------------------------


def _score(value: Any, where: str) -> float:
    # bool is an int in Python; a score of `true` is a bug upstream, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{where}: expected a number, got {type(value).__name__}")
    score = float(value)
    if not math.isfinite(score):
        raise ContractError(f"{where}: score is not finite ({value!r})")
    return score


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ContractError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _obj(body: Any, where: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ContractError(f"{where}: expected a JSON object, got {_json_kind(body)}")
    return body


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ContractError(f"{where}: expected a JSON array, got {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


def _only_keys(body: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ContractError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")


def _nonempty(pairs: list[tuple[str, str]], where: str) -> tuple[tuple[str, str], ...]:
    if not pairs:
        raise ContractError(f"{where}: no documents to score")
    return tuple(pairs)


def _ranked_to_input_order(body: Any, n_docs: int, score_key: str) -> list[float]:
    """Scores in input order from a ranked `[{"index": i, score_key: s}, ...]` list covering every input once."""
    items = _list(body, "response")
    if len(items) != n_docs:
        raise ContractError(f"response: {len(items)} results for {n_docs} documents; every document needs a score")
    scores: list[float | None] = [None] * n_docs
    for k, item in enumerate(items):
        entry = _obj(item, f"response[{k}]")
        index = entry.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_docs:
            raise ContractError(f"response[{k}].index: expected an integer in 0..{n_docs - 1}, got {index!r}")
        if scores[index] is not None:
            raise ContractError(f"response[{k}].index: document {index} is scored twice")
        if score_key not in entry:
            raise ContractError(f"response[{k}]: missing {score_key!r}")
        scores[index] = _score(entry[score_key], f"response[{k}].{score_key}")
    return [s for s in scores if s is not None]


def _ranked_response(request: ScoreRequest, scores: Sequence[float], limit: int | None) -> list[dict[str, Any]]:
    # Stable sort: equal scores keep input order, so answers are deterministic.
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    if limit is not None:
        order = order[:limit]
    return [{"index": i, "score": float(scores[i])} for i in order]


# --- 1. Hugging Face text-classification pipeline (the stock SageMaker HF container) ---------------------------


def _hf_build_request(query: str, docs: Sequence[str]) -> Any:
    return {"inputs": [{"text": query, "text_pair": d} for d in docs]}


def _hf_parse_response(body: Any, n_docs: int) -> list[float]:
    items = _list(body, "response")
    if len(items) != n_docs:
        raise ContractError(f"response: {len(items)} results for {n_docs} documents; every document needs a score")
    out = []
    for k, item in enumerate(items):
        entry = _obj(item, f"response[{k}]")
        if "score" not in entry:
            raise ContractError(f"response[{k}]: missing 'score'")
        out.append(_score(entry["score"], f"response[{k}].score"))
    return out


def _hf_parse_request(body: Any) -> ScoreRequest:
    obj = _obj(body)
    # The HF toolkit forwards "parameters" as pipeline keyword arguments (e.g. truncation); we accept and ignore it.
    _only_keys(obj, {"inputs", "parameters"})
    if "inputs" not in obj:
        raise ContractError("body: missing 'inputs'")
    inputs = obj["inputs"]
    if isinstance(inputs, dict):  # the pipeline also takes a single pair
        inputs = [inputs]
    pairs = []
    for k, item in enumerate(_list(inputs, "inputs")):
        entry = _obj(item, f"inputs[{k}]")
        _only_keys(entry, {"text", "text_pair"}, f"inputs[{k}]")
        if "text" not in entry or "text_pair" not in entry:
            raise ContractError(f"inputs[{k}]: expected both 'text' and 'text_pair'")
        pairs.append((_text(entry["text"], f"inputs[{k}].text"), _text(entry["text_pair"], f"inputs[{k}].text_pair")))
    return ScoreRequest(_nonempty(pairs, "inputs"))


def _hf_build_response(request: ScoreRequest, scores: Sequence[float]) -> Any:
    # A single-logit cross-encoder under the HF pipeline reports its sigmoid as LABEL_0, one entry per input.
    return [{"label": "LABEL_0", "score": float(s)} for s in scores]


# --- 2. custom handler: {"pairs": [[q, d], ...]} -> {"scores": [...]} (docs/sources.md) ----------------------------


def _pairs_build_request(query: str, docs: Sequence[str]) -> Any:
    return {"pairs": [[query, d] for d in docs]}


def _pairs_parse_response(body: Any, n_docs: int) -> list[float]:
    obj = _obj(body, "response")
    if "scores" not in obj:
        raise ContractError("response: missing 'scores'")
    items = _list(obj["scores"], "response.scores")
    if len(items) != n_docs:
        raise ContractError(f"response.scores: {len(items)} scores for {n_docs} documents")
    return [_score(v, f"response.scores[{k}]") for k, v in enumerate(items)]


def _pairs_parse_request(body: Any) -> ScoreRequest:
    obj = _obj(body)
    _only_keys(obj, {"pairs"})
    if "pairs" not in obj:
        raise ContractError("body: missing 'pairs'")
    pairs = []
    for k, item in enumerate(_list(obj["pairs"], "pairs")):
        pair = _list(item, f"pairs[{k}]")
        if len(pair) != 2:
            raise ContractError(f"pairs[{k}]: expected [query, document], got {len(pair)} item(s)")
        pairs.append((_text(pair[0], f"pairs[{k}][0]"), _text(pair[1], f"pairs[{k}][1]")))
    return ScoreRequest(_nonempty(pairs, "pairs"))


def _pairs_build_response(request: ScoreRequest, scores: Sequence[float]) -> Any:
    return {"scores": [float(s) for s in scores]}


# --- 3. custom handler: {"query", "documents", "topk"} -> ranked [{"index", "score"}] (docs/sources.md) -------------


def _topk_build_request(query: str, docs: Sequence[str]) -> Any:
    # Ask for every document: the reranker must score the whole page, and we restore input order ourselves.
    return {"query": query, "documents": list(docs), "topk": len(docs)}


def _topk_parse_response(body: Any, n_docs: int) -> list[float]:
    return _ranked_to_input_order(body, n_docs, "score")


def _query_docs(obj: dict[str, Any], docs_key: str) -> tuple[str, list[str]]:
    for key in ("query", docs_key):
        if key not in obj:
            raise ContractError(f"body: missing {key!r}")
    query = _text(obj["query"], "query")
    docs = [_text(d, f"{docs_key}[{k}]") for k, d in enumerate(_list(obj[docs_key], docs_key))]
    return query, docs


def _topk_parse_request(body: Any) -> ScoreRequest:
    obj = _obj(body)
    _only_keys(obj, {"query", "documents", "topk"})
    query, docs = _query_docs(obj, "documents")
    topk = obj.get("topk", len(docs))
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ContractError(f"topk: expected a positive integer, got {topk!r}")
    return ScoreRequest(_nonempty([(query, d) for d in docs], "documents"), topk=topk)


def _topk_build_response(request: ScoreRequest, scores: Sequence[float]) -> Any:
    return _ranked_response(request, scores, request.topk)


# --- 4. Text Embeddings Inference /rerank ---------------------------------------------------------------------------


def _tei_build_request(query: str, docs: Sequence[str]) -> Any:
    return {"query": query, "texts": list(docs), "truncate": True}


def _tei_parse_response(body: Any, n_docs: int) -> list[float]:
    return _ranked_to_input_order(body, n_docs, "score")


def _tei_parse_request(body: Any) -> ScoreRequest:
    obj = _obj(body)
    # TEI's optional flags; we score the same way whatever they say, and never echo text back.
    _only_keys(obj, {"query", "texts", "truncate", "raw_scores", "return_text", "truncation_direction"})
    query, docs = _query_docs(obj, "texts")
    return ScoreRequest(_nonempty([(query, d) for d in docs], "texts"))


def _tei_build_response(request: ScoreRequest, scores: Sequence[float]) -> Any:
    return _ranked_response(request, scores, None)


CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (
        Contract(
            name="hf-text-classification",
            pre_process_file="hf-text-classification.pre.painless",
            post_process_file="hf-text-classification.post.painless",
            summary="Hugging Face inference toolkit, HF_TASK=text-classification (the stock SageMaker HF container)",
            example_request='{"inputs": [{"text": q, "text_pair": d}, ...]}',
            example_response='[{"label": "LABEL_0", "score": s}, ...]  (input order)',
            build_request=_hf_build_request,
            parse_response=_hf_parse_response,
            parse_request=_hf_parse_request,
            build_response=_hf_build_response,
        ),
        Contract(
            name="pairs-scores",
            pre_process_file="pairs-scores.pre.painless",
            post_process_file="pairs-scores.post.painless",
            summary="custom inference.py scoring pairs",
            example_request='{"pairs": [[q, d], ...]}',
            example_response='{"scores": [s, ...]}  (input order)',
            build_request=_pairs_build_request,
            parse_response=_pairs_parse_response,
            parse_request=_pairs_parse_request,
            build_response=_pairs_build_response,
        ),
        Contract(
            name="query-documents-topk",
            pre_process_file="query-documents-topk.pre.painless",
            post_process_file="ranked-index-score.post.painless",
            summary="custom inference.py returning the top k documents by score",
            example_request='{"query": q, "documents": [d, ...], "topk": n}',
            example_response='[{"index": i, "score": s}, ...]  (best first)',
            build_request=_topk_build_request,
            parse_response=_topk_parse_response,
            parse_request=_topk_parse_request,
            build_response=_topk_build_response,
        ),
        Contract(
            name="tei-rerank",
            pre_process_file="tei-rerank.pre.painless",
            post_process_file="ranked-index-score.post.painless",
            summary="Hugging Face Text Embeddings Inference /rerank",
            example_request='{"query": q, "texts": [d, ...], "truncate": true}',
            example_response='[{"index": i, "score": s}, ...]  (best first)',
            build_request=_tei_build_request,
            parse_response=_tei_parse_response,
            parse_request=_tei_parse_request,
            build_response=_tei_build_response,
            extra_path="/rerank",
        ),
    )
}

CONTRACT_NAMES: tuple[str, ...] = tuple(CONTRACTS)


def get_contract(name: str) -> Contract:
    """The contract called `name`; ContractError naming the known ones otherwise."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise ContractError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}") from None
