"""`search`: one query through the rerank pipeline, and optionally without it to show what reranking moved.

The request builders and the response parser are pure; `run_search` and `execute` talk to the cluster through
`Cluster.request`. The rerank processor (docs/ml-commons.md#rerank-processor) only reorders the page it is given,
so a search fetches `window` hits through the pipeline and shows the top `size`. Requests never carry `from`,
`search_after` or size 0 (an empty page with hits behind it makes ML Commons fail with "No text documents were
provided"), always track total hits (the processor reads the total) and always send
`ext.rerank.query_context.query_text`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError, ConfigError

DEFAULT_SIZE = 5
# Keys of a --query-json body that search decides itself; any value the file gives them is replaced.
_OWNED_KEYS = ("size", "from", "search_after", "track_total_hits")


@dataclass(frozen=True)
class Hit:
    """One hit of a result page: its 1-based rank, id, score (the reranker's when reranked) and source."""

    rank: int
    id: str
    score: float | None
    source: Mapping[str, Any]
    index: str = ""
    # Rank and score of the same document without reranking (compare mode); None when not known.
    was: int | None = None
    before: float | None = None


@dataclass(frozen=True)
class Page:
    """One search response: total matching documents, the hits in order, server and client time."""

    total: int
    hits: tuple[Hit, ...]
    took_ms: float
    latency_ms: float


@dataclass(frozen=True)
class SearchResult:
    """What `run_search` found: the top `size` hits of `window` reranked ones, and the run without reranking."""

    query_text: str
    index: str
    pipeline: str
    size: int
    window: int
    total: int
    hits: tuple[Hit, ...]
    reranked: Page | None
    baseline: Page | None = None
    min_score: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    first_stage: str = "lexical"  # what found the hits (dense_query.py)

    def to_json(self, fields: Sequence[str] = ()) -> dict[str, Any]:
        """The result as plain JSON data (what `search --json` prints)."""
        out: dict[str, Any] = {
            "query": self.query_text,
            "index": self.index,
            "pipeline": self.pipeline,
            "total": self.total,
            "size": self.size,
            "window": self.window,
            "min_score": self.min_score,
            "hits": [_hit_json(h, compare=self.baseline is not None) for h in self.hits],
            "latency_ms": {
                "reranked": self.reranked.latency_ms if self.reranked else None,
                "without_rerank": self.baseline.latency_ms if self.baseline else None,
            },
            "notes": list(self.notes),
            "first_stage": self.first_stage,
        }
        return out


def _hit_json(hit: Hit, *, compare: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rank": hit.rank, "id": hit.id, "score": hit.score}
    if compare:
        out["was"] = hit.was
        out["score_without_rerank"] = hit.before
    out["source"] = dict(hit.source)
    return out


# --- pure builders ----------------------------------------------------------------------------------------------------


def default_window(size: int, max_batch: int) -> int:
    """Hits to rerank when --window is not given: four pages (at least 20), at most max_batch."""
    return min(max(4 * size, 20), max_batch)


def first_stage_query(query_text: str, fields: Sequence[str]) -> dict[str, Any]:
    """`match` on the one document field, `multi_match` over several."""
    if len(fields) == 1:
        return {"match": {fields[0]: {"query": query_text}}}
    return {"multi_match": {"query": query_text, "fields": list(fields)}}


def build_search_body(
    query_text: str,
    *,
    query: Mapping[str, Any],
    window: int,
    rerank: bool,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The _search body: `base` (a --query-json body) with our query, page and rerank context set.

    With `rerank`, `ext.rerank.query_context.query_text` is always set (without it the processor fails with a
    NullPointerException); without, any `ext.rerank` is removed so both runs send the same first-stage search.
    """
    if window < 1:
        raise ValueError("window must be at least 1: a size-0 page sent to the reranker fails")
    body: dict[str, Any] = {k: v for k, v in (base or {}).items() if k not in _OWNED_KEYS}
    body["query"] = dict(query)
    body["size"] = window
    body["track_total_hits"] = True
    ext = {k: v for k, v in dict(body.get("ext") or {}).items() if k != "rerank"}
    if rerank:
        ext["rerank"] = {"query_context": {"query_text": query_text}}
    if ext:
        body["ext"] = ext
    else:
        body.pop("ext", None)
    return body


# Runs a search without any pipeline, even when the index names a default one (index.search.default_pipeline).
NO_PIPELINE = "_none"


def search_params(pipeline: str | None) -> dict[str, str]:
    """The query-string parameters: the pipeline to run the response through, or `_none` for no pipeline at all."""
    return {"search_pipeline": pipeline or NO_PIPELINE}


def parse_page(response: Mapping[str, Any], *, latency_ms: float = 0.0) -> Page:
    """A Page from a _search response; ClusterError if it lacks hits or an exact total."""
    hits_obj = response.get("hits")
    if not isinstance(hits_obj, Mapping):
        raise ClusterError("search response has no hits object")
    total_obj = hits_obj.get("total")
    total = total_obj.get("value") if isinstance(total_obj, Mapping) else total_obj
    if not isinstance(total, int):
        raise ClusterError("search response has no total hit count (track_total_hits must stay on for reranking)")
    hits = []
    for i, raw in enumerate(hits_obj.get("hits") or [], 1):
        score = raw.get("_score")
        hits.append(
            Hit(
                rank=i,
                id=str(raw.get("_id")),
                score=float(score) if isinstance(score, (int, float)) else None,
                source=raw.get("_source") or {},
                index=str(raw.get("_index", "")),
            )
        )
    took = response.get("took")
    return Page(total, tuple(hits), float(took) if isinstance(took, (int, float)) else 0.0, latency_ms)


def load_query_json(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(query object, full body or None) from a --query-json file holding a `query` object or a whole body."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"], fix="--query-json must name a JSON file") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
    if not isinstance(value, dict) or not value:
        raise ConfigError([f"{path}:1: expected a JSON object: a query (like {{\"match\": ...}}) or a search body"])
    if "query" in value:
        query = value["query"]
        if not isinstance(query, dict) or not query:
            raise ConfigError([f"{path}: \"query\" must be a non-empty JSON object"])
        return dict(query), value
    return value, None


def overridden_keys(base: Mapping[str, Any] | None) -> list[str]:
    """The keys of a --query-json body that search replaces (page, total tracking, rerank context)."""
    if not base:
        return []
    out = [k for k in _OWNED_KEYS if k in base]
    if isinstance(base.get("ext"), Mapping) and "rerank" in base["ext"]:
        out.append("ext.rerank")
    return out


def snippet_text(source: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The document fields' text, joined: what the reranker saw (ignoring the processor's missing separator)."""
    parts = []
    for name in fields:
        value = source.get(name)
        if value is None:
            continue
        parts.append(" ".join(str(v) for v in value) if isinstance(value, list) else str(value))
    return " | ".join(parts)


def resolve_window(config: Config, size: int, window: int | None) -> int:
    """The rerank window for `size` shown hits; ConfigError when it breaks the limits."""
    max_batch = config.sagemaker.max_batch
    if size < 1:
        raise ConfigError([f"--size must be at least 1, not {size}"])
    if window is None:
        if size > max_batch:
            raise ConfigError(
                [f"--size {size} is larger than sagemaker.max_batch ({max_batch}) in {config.source.name}: "
                 "every hit shown must be reranked"],
                fix="show fewer hits, or raise sagemaker.max_batch if the endpoint takes that many documents per call",
            )
        window = default_window(size, max_batch)
    if window > max_batch:
        raise ConfigError(
            [f"--window {window} is larger than sagemaker.max_batch ({max_batch}) in {config.source.name}"],
            fix="rerank fewer hits, or raise sagemaker.max_batch if the endpoint takes that many documents per call",
        )
    if window < size:
        raise ConfigError(
            [f"--window {window} is smaller than --size {size}: the shown hits must all be reranked"],
            fix=f"use --window {size} or more (at most sagemaker.max_batch, {max_batch})",
        )
    return window


# --- talking to the cluster -------------------------------------------------------------------------------------------


def execute(cluster: Cluster, index: str, body: Mapping[str, Any], *, pipeline: str | None = None) -> Page:
    """One _search on `index` (through `pipeline` if given), timed on the client."""
    start = time.perf_counter()
    try:
        response = cluster.request("POST", f"/{index}/_search", body=body, params=search_params(pipeline))
    except ClusterError as exc:
        raise _explain(exc, index, pipeline) from None
    latency = (time.perf_counter() - start) * 1000.0
    return parse_page(response, latency_ms=latency)


def _explain(exc: ClusterError, index: str, pipeline: str | None) -> ClusterError:
    """The cluster's error with a fix for a missing index or pipeline; the rerank processor's own failures get theirs
    from the one remedy table (diagnose.py), installed on the cluster the CLI opens."""
    if exc.fix:
        return exc
    text = exc.message
    fix = None
    if "index_not_found_exception" in text or "no such index" in text:
        fix = f"create the index {index!r} with `os-rerank setup`"
    elif pipeline and pipeline in text and ("not defined" in text or "not found" in text):
        fix = f"create the search pipeline {pipeline!r} with `os-rerank setup`"
    if fix is None:
        return exc
    return ClusterError(exc.message, fix=fix, status=exc.status)


def run_search(
    cluster: Cluster,
    config: Config,
    query_text: str,
    *,
    size: int = DEFAULT_SIZE,
    window: int | None = None,
    min_score: float | None = None,
    query: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    compare: bool = False,
    index: str | None = None,
    first_stage: str | None = None,
) -> SearchResult:
    """The top `size` of `window` hits reranked by the configured pipeline (and, with `compare`, the run without).

    `first_stage` (lexical, dense, hybrid; dense_query.py) picks what finds the hits; default: what the config
    provisions.
    """
    if not query_text.strip():
        raise ConfigError(["the query text is empty: the reranker needs a query to compare documents with"])
    window = resolve_window(config, size, window)
    index = index or config.index.name
    pipeline = config.pipeline.name
    plain_pipeline = None
    query = query or first_stage_query(query_text, config.pipeline.document_fields)
    from . import dense_query  # imported here: jinja2 (through render) stays out of a lexical search's start-up

    stage = first_stage or dense_query.default_first_stage(config)
    if stage != "lexical":
        model_id = dense_query.embedding_model_id(cluster, config) if config.embedding is not None else None
        found = dense_query.first_stage(config, stage, query_text, window=window, lexical=dict(query),
                                        model_id=model_id)
        index, query, pipeline, plain_pipeline = found.index, found.query, found.rerank_pipeline, found.plain_pipeline
        base = {**found.base, **(base or {})}
    notes = [f"--query-json: {k} replaced by os-rerank" for k in overridden_keys(base)]

    baseline = None
    if compare:
        plain = build_search_body(query_text, query=query, window=window, rerank=False, base=base)
        baseline = execute(cluster, index, plain, pipeline=plain_pipeline)
    reranked = None
    if baseline is None or baseline.total > 0:
        body = build_search_body(query_text, query=query, window=window, rerank=True, base=base)
        reranked = execute(cluster, index, body, pipeline=pipeline)
    else:
        notes.append("no hits: nothing was sent to the reranker")
    page = reranked or baseline
    assert page is not None

    before = {h.id: h for h in baseline.hits} if baseline else {}
    shown: list[Hit] = []
    for hit in page.hits:
        if min_score is not None and (hit.score is None or hit.score < min_score):
            continue
        if len(shown) == size:
            break
        old = before.get(hit.id)
        shown.append(
            Hit(
                rank=hit.rank,
                id=hit.id,
                score=hit.score,
                source=hit.source,
                index=hit.index,
                was=old.rank if old else None,
                before=old.score if old else None,
            )
        )
    return SearchResult(
        query_text=query_text,
        index=index,
        pipeline=pipeline,
        size=size,
        window=window,
        total=page.total,
        hits=tuple(shown),
        reranked=reranked,
        baseline=baseline,
        min_score=min_score,
        notes=tuple(notes),
        first_stage=stage,
    )


def movement(rank: int, was: int | None) -> str:
    """How far a hit moved by reranking: `↑2`, `↓1`, `=`, or `new` when it was not in the unreranked window."""
    if was is None:
        return "new"
    if was == rank:
        return "="
    return f"↑{was - rank}" if was > rank else f"↓{rank - was}"


# --- text output ------------------------------------------------------------------------------------------------------


def format_search(result: SearchResult, fields: Sequence[str]) -> str:
    """The result as the terminal shows it: a header line, then rank/score/id/text (with `was` when comparing)."""
    from ..output import snippet, table

    page = result.reranked
    if page is not None:
        how = f"top {min(result.window, page.total)} reranked by {result.pipeline}"
    else:
        how = "not reranked (no hits)"
    header = f"{json.dumps(result.query_text, ensure_ascii=False)} in {result.index}: {result.total} hits, {how}"
    if result.first_stage != "lexical":
        header += f" (first stage: {result.first_stage})"
    if result.min_score is not None:
        header += f", score >= {result.min_score:g}"
    if not result.hits:
        return f"{header}\n(no hits to show)"
    if result.baseline is not None:
        rows = [
            [h.rank, _was(h), _score(h.score), _score(h.before), h.id, snippet(snippet_text(h.source, fields), 60)]
            for h in result.hits
        ]
        return f"{header}\n{table(rows, ['rank', 'was', 'score', 'before', 'id', 'text'])}"
    rows = [[h.rank, _score(h.score), h.id, snippet(snippet_text(h.source, fields), 72)] for h in result.hits]
    return f"{header}\n{table(rows, ['rank', 'score', 'id', 'text'])}"


def _was(hit: Hit) -> str:
    move = movement(hit.rank, hit.was)
    return move if hit.was is None else f"{hit.was} {move}"


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"
