"""neural-search's dense side in the double, as far as os-rerank uses it (dense.py), as a 2.19.1 node showed it:

- ingest pipelines (`/_ingest/pipeline/<name>`) with the `text_embedding` processor, run on documents written to
  an index whose `index.default_pipeline` names one: one model call per document, the vector stored in the
  `field_map` target;
- the `neural` query on a `knn_vector` field: the query text embedded by the model, the `k` nearest documents by
  cosine similarity, scored as Lucene's cosine space does, (1 + cos) / 2;
- the `hybrid` query, only through a search pipeline whose `normalization-processor` normalises each sub-query's
  scores (min_max: (s - min) / (max - min), 1.0 when all equal, 0.001 instead of 0) and combines them
  (arithmetic_mean with weights: sum(w_i s_i) / sum(w_i), a document a sub-query did not find counting 0 there).
"""

from __future__ import annotations

import copy
import math
import unicodedata
from typing import TYPE_CHECKING, Any

from .http import Request, Response, Router
from .state import ApiError, illegal_argument

if TYPE_CHECKING:
    from .search import Search
    from .state import Index

_JAVA_CONTROL_SPACE = set("\t\n\u000b\f\r\u001c\u001d\u001e\u001f")
_NO_BREAK = {"\u00a0", "\u2007", "\u202f"}


def java_is_blank(text: str) -> bool:
    """commons-lang3 StringUtils.isBlank: empty, or every char Character.isWhitespace (no-break spaces are not)."""
    return all(c in _JAVA_CONTROL_SPACE or (unicodedata.category(c) in ("Zs", "Zl", "Zp") and c not in _NO_BREAK)
               for c in text)


MIN_SCORE = 0.001  # neural-search MinMaxScoreNormalizationTechnique.MIN_SCORE
SINGLE_RESULT_SCORE = 1.0


class IngestPipelines:
    def __init__(self, search: Search) -> None:
        self.search = search
        self.pipelines: dict[str, dict[str, Any]] = {}

    def routes(self, router: Router) -> None:
        router.add("PUT", "/_ingest/pipeline/(?P<name>[^/]+)", self.put)
        router.add("GET", "/_ingest/pipeline/(?P<name>[^/]+)", self.get)
        router.add("DELETE", "/_ingest/pipeline/(?P<name>[^/]+)", self.delete)

    def put(self, req: Request) -> Response:
        body = req.json({})
        for processor in body.get("processors") or []:
            (kind, config), = processor.items()
            if kind != "text_embedding":
                continue  # other processors: accepted, not modelled
            if not config.get("model_id"):
                raise ApiError(400, "parse_exception", "[model_id] required property is missing",
                               extra={"processor_type": "text_embedding", "property_name": "model_id"})
            if not config.get("field_map"):
                raise ApiError(400, "parse_exception", "[field_map] required property is missing",
                               extra={"processor_type": "text_embedding", "property_name": "field_map"})
        with self.search.state.lock:
            self.pipelines[req.match["name"]] = copy.deepcopy(body)
        return Response(200, {"acknowledged": True})

    def get(self, req: Request) -> Response:
        with self.search.state.lock:
            body = self.pipelines.get(req.match["name"])
            return Response(200, {req.match["name"]: copy.deepcopy(body)}) if body is not None else Response(404, {})

    def delete(self, req: Request) -> Response:
        with self.search.state.lock:
            if self.pipelines.pop(req.match["name"], None) is None:
                raise ApiError(404, "resource_not_found_exception", f"pipeline [{req.match['name']}] is missing")
        return Response(200, {"acknowledged": True})

    def run(self, index: Index, source: dict[str, Any]) -> dict[str, Any]:
        """`source` through the index's default ingest pipeline (unchanged when it has none)."""
        name = index.settings.get("index.default_pipeline")
        if not name or name == "_none":
            return source
        pipeline = self.pipelines.get(str(name))
        if pipeline is None:
            raise illegal_argument(f"pipeline with id [{name}] does not exist")
        out = dict(source)
        for processor in pipeline.get("processors") or []:
            (kind, config), = processor.items()
            if kind != "text_embedding":
                continue
            for text_field, vector_field in config["field_map"].items():
                text = out.get(text_field)
                if isinstance(text, str) and java_is_blank(text):  # seen on 2.19.1 ("", "\r")
                    raise illegal_argument(f"map type field [{text_field}] has empty string value, cannot process it")
                if isinstance(text, str):
                    assert self.search.ml is not None
                    out[vector_field] = self.search.ml.text_embedding(config["model_id"], [text])[0]
        return out


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def neural_scores(search: Search, index: Index, ids: list[str], spec: dict[str, Any]) -> dict[str, float]:
    """The `k` nearest documents to the embedded query text, scored (1 + cos) / 2 (Lucene's cosine space)."""
    (field, params), = spec.items()
    mapping = (index.mappings.get("properties") or {}).get(field) or {}
    if mapping.get("type") != "knn_vector":
        raise illegal_argument(f"Field '{field}' is not knn_vector type.")
    if not params.get("model_id") or "query_text" not in params:
        raise illegal_argument("query_text and model_id are required for a neural query")
    assert search.ml is not None
    query = search.ml.text_embedding(params["model_id"], [str(params["query_text"])])[0]
    scored = [(i, (1.0 + cosine(query, index.docs[i][field])) / 2.0) for i in ids if field in index.docs[i]]
    scored.sort(key=lambda x: -x[1])
    return dict(scored[: int(params.get("k", 10))])


def hybrid_scores(search: Search, index: Index, ids: list[str], spec: dict[str, Any], size: int,
                  pipeline: dict[str, Any] | None) -> dict[str, float]:
    """The hybrid query's combined scores, through the pipeline's normalization-processor."""
    processor = next((p["normalization-processor"] for p in (pipeline or {}).get("phase_results_processors") or []
                      if "normalization-processor" in p), None)
    if processor is None:
        raise ApiError(500, "illegal_state_exception", "the double models a hybrid query only through a search "
                       "pipeline with a normalization-processor (a 2.19.1 node answers marker scores without one)")
    if (processor.get("normalization") or {}).get("technique", "min_max") != "min_max" or \
            (processor.get("combination") or {}).get("technique", "arithmetic_mean") != "arithmetic_mean":
        raise ApiError(500, "illegal_state_exception", "the double models min_max + arithmetic_mean only")
    queries = spec.get("queries") or []
    weights = ((processor.get("combination") or {}).get("parameters") or {}).get("weights") or [1.0] * len(queries)
    per_query = []
    for query in queries:
        scores = search._eval(index, ids, query)
        top = dict(sorted(scores.items(), key=lambda x: -x[1])[:size])  # each sub-query's top `size`, per shard
        if top:
            low, high = min(top.values()), max(top.values())
            top = {i: (SINGLE_RESULT_SCORE if high == low else max((s - low) / (high - low), 0.0) or MIN_SCORE)
                   for i, s in top.items()}
        per_query.append(top)
    found = {i for top in per_query for i in top}
    return {i: sum(w * top.get(i, 0.0) for w, top in zip(weights, per_query, strict=True)) / sum(weights)
            for i in found}
