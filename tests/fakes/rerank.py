"""Search pipelines: validating a pipeline at PUT and running its `rerank` response processor
(docs/ml-commons.md#rerank-processor)."""

from __future__ import annotations

import copy
import logging
import math
from typing import TYPE_CHECKING, Any

from .predict import java_float
from .state import ApiError, illegal_argument

if TYPE_CHECKING:
    from .search import Search

log = logging.getLogger("opensearch_double")
_COMMON = ("tag", "description", "ignore_failure")
# The processors of OpenSearch's search-pipeline-common module; a node without the module refuses them.
COMMON_RESPONSE = ("collapse", "rename_field", "sort", "split", "truncate_hits")
COMMON_REQUEST = ("filter_query", "oversample", "script")
MAX_DOCUMENT_FIELDS = 50


def _parse_error(message: str, prop: str | None = None) -> ApiError:
    extra = {"processor_type": "rerank"}
    if prop:
        extra["property_name"] = prop
    return ApiError(400, "parse_exception", message, extra=extra)


def _rerank_types(search: Search) -> list[str]:
    return ["ml_opensearch"] + (["by_field"] if search.state.version >= (2, 18, 0) else [])


def validate_pipeline(search: Search, body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "parse_exception", "request body is required")
    common = search.common_module
    for section, allowed in (("request_processors", COMMON_REQUEST if common else ()),
                             ("response_processors", COMMON_RESPONSE if common else ()),
                             ("phase_results_processors", ("normalization-processor",))):
        for processor in body.get(section) or []:
            (kind, config), = processor.items()
            if kind == "rerank" and section == "response_processors" and search.neural:
                _validate_rerank(search, config)
            elif kind not in allowed:
                raise illegal_argument(f"Invalid processor type {kind}")  # as a 2.19.1 node answers
            elif kind == "oversample":
                factor = (config or {}).get("sample_factor")
                if not isinstance(factor, (int, float)) or factor < 1.0:
                    raise ApiError(400, "parse_exception", "[sample_factor] Value must be >= 1.0",
                                   extra={"processor_type": "oversample", "property_name": "sample_factor"})


def _validate_rerank(search: Search, config: Any) -> None:
    if not isinstance(config, dict):
        raise _parse_error("[rerank] processor config must be an object")
    types = _rerank_types(search)
    present = [t for t in types if t in config]
    if not present:
        raise illegal_argument(f"No rerank type found. Possible rerank types are: [{', '.join(types)}]")
    if len(present) > 1:
        raise illegal_argument(f"Multiple rerank types found: [{', '.join(present)}]. Only one is permitted.")
    kind = present[0]
    spec = config[kind] if isinstance(config[kind], dict) else {}
    if kind == "ml_opensearch":
        if not spec.get("model_id"):
            raise _parse_error("[model_id] required property is missing", "model_id")
        if "context" not in config:
            raise _parse_error("[context] required property is missing", "context")
    else:
        if not spec.get("target_field"):
            raise _parse_error("[target_field] required property is missing", "target_field")
    context = config.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise _parse_error("[context] property isn't a map, but of type [" + type(context).__name__ + "]")
        for key in context:
            if key != "document_fields":
                raise illegal_argument(f"unrecognized context field: {key}")
        fields = context.get("document_fields")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise illegal_argument("document_fields must be a list of field names")
        if not fields:
            raise illegal_argument("document_fields must be nonempty")
        if len(fields) > MAX_DOCUMENT_FIELDS:
            raise illegal_argument(f"document_fields must be at most {MAX_DOCUMENT_FIELDS} fields long")
    unknown = [k for k in config if k not in (*_COMMON, *types, "context")]
    if unknown:
        raise _parse_error(f"processor [rerank] doesn't support one or more provided configuration parameters "
                           f"[{', '.join(unknown)}]")


def run_request_processors(search: Search, pipeline: dict[str, Any], request: dict[str, Any],
                           context: dict[str, Any]) -> dict[str, Any]:
    """`oversample` (OversampleRequestProcessor): size × sample_factor, rounded up; the size asked for (10 when the
    request names none) kept in the pipeline's context for truncate_hits. Other request processors: not modelled."""
    for processor in pipeline.get("request_processors") or []:
        (kind, config), = processor.items()
        if kind == "oversample":
            request = dict(request)
            original = int(request.get("size", 10))
            context["original_size"] = original
            request["size"] = math.ceil(original * float(config["sample_factor"]))
    return request


def run_response_processors(search: Search, name: str, pipeline: dict[str, Any], request: dict[str, Any],
                            response: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    for processor in pipeline.get("response_processors") or []:
        (kind, config), = processor.items()
        if kind == "truncate_hits":  # TruncateHitsResponseProcessor: target_size, else the size before oversample
            size = config.get("target_size", (context or {}).get("original_size"))
            if size is None:
                raise ApiError(500, "illegal_state_exception", "truncate_hits: no target_size and no original_size")
            response["hits"]["hits"] = response["hits"]["hits"][: int(size)]
            continue
        if kind != "rerank":
            continue  # other processors are accepted at PUT but not modelled
        try:
            response = _rerank(search, config, request, copy.deepcopy(response))
        except ApiError as exc:
            if config.get("ignore_failure"):
                log.warning("The exception from response processor [rerank] in the search pipeline [%s] was ignored",
                            name)
                continue
            raise _pipeline_failure(exc) from exc
    return response


def _pipeline_failure(exc: ApiError) -> ApiError:
    """Core wraps a processor's exception in SearchPipelineProcessingException; root_cause unwraps to the cause."""
    from .search import java_exception_name

    cause = {"type": exc.type, "reason": exc.reason}
    reason = f"{java_exception_name(exc.type)}: {exc.reason}" if exc.reason else java_exception_name(exc.type)
    return ApiError(exc.status, "search_pipeline_processing_exception", reason, root=(exc.type, exc.reason),
                    caused_by=cause)


def _query_text(request: dict[str, Any]) -> str:
    ext = (request.get("ext") or {}).get("rerank")
    if ext is None:  # RerankSearchExtBuilder.fromExtBuilderList returns null (docs/ml-commons.md#rerank-processor)
        raise ApiError(500, "null_pointer_exception",
                       'Cannot invoke "org.opensearch.neuralsearch.query.ext.RerankSearchExtBuilder.getParams()" '
                       'because the return value of "RerankSearchExtBuilder.fromExtBuilderList(java.util.List)" '
                       "is null")
    context = ext.get("query_context") if isinstance(ext, dict) else None
    if context is None:
        raise illegal_argument("must specify query_context")
    has_text, has_path = "query_text" in context, "query_text_path" in context
    if has_text and has_path:
        raise illegal_argument('Cannot specify both "query_text" and "query_text_path"')
    if not has_text and not has_path:
        raise illegal_argument('Must specify either "query_text" or "query_text_path"')
    if has_text:
        return str(context["query_text"])
    value: Any = request
    for part in str(context["query_text_path"]).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise illegal_argument("query_text_path must point to a string field")
    return value


def _context(search: Search, hit: dict[str, Any], fields: list[str]) -> str:
    from .search import _source_path, java_string

    source = hit.get("_source") or {}
    modern = search.state.version >= (3, 6, 0)
    out = []
    for field in fields:
        if modern:
            value = _source_path(source, field)
            if isinstance(value, list):
                out.append(" ".join(java_string(v) for v in value))
                continue
        else:  # < 3.6: a top-level key only; dotted paths are silently empty (neural-search#657)
            value = source.get(field) if field in source else None
        if value is None:
            log.warning("Could not find field %s in document %s for reranking! Using the empty string instead.",
                        field, hit["_id"])
            out.append("")
        else:
            out.append(java_string(value))
    return "".join(out)


def _scores(search: Search, tensors: list[dict[str, Any]]) -> list[float]:
    version = search.state.version
    scores = []
    for tensor in tensors:
        data = tensor.get("data")
        if not data:
            if version >= (3, 7, 0):
                raise illegal_argument("The remote model 'response' field must be a list of float arrays")
            if version >= (3, 0, 0):
                raise ApiError(500, "null_pointer_exception", None)
            raise ApiError(500, "illegal_state_exception", "failed while calling model, check error log for details")
        if version < (3, 0, 0) and tensor.get("data_type") not in ("FLOAT32", "FLOAT16"):
            raise ApiError(500, "class_cast_exception", "class java.lang.Integer cannot be cast to class java.lang."
                                                        "Float")
        scores.append(java_float(float(data[0])))
    return scores


def _rerank(search: Search, config: dict[str, Any], request: dict[str, Any],
            response: dict[str, Any]) -> dict[str, Any]:
    hits = response["hits"]
    if "by_field" in config:
        return _by_field(config["by_field"], hits, response)
    query = _query_text(request)
    fields = (config.get("context") or {}).get("document_fields") or []
    contexts = [_context(search, hit, fields) for hit in hits["hits"]]
    if "total" not in hits:  # track_total_hits: false -> getTotalHits() is null
        raise ApiError(500, "null_pointer_exception",
                       'Cannot invoke "org.apache.lucene.search.TotalHits.value()" because the return value of '
                       '"org.opensearch.search.SearchHits.getTotalHits()" is null')
    if hits["total"]["value"] == 0:
        return response
    if search.ml is None:
        raise ApiError(500, "illegal_state_exception", "ML Commons is not installed")
    tensors = search.ml.text_similarity(config["ml_opensearch"]["model_id"], query, contexts)
    scores = _scores(search, tensors)
    if len(scores) != len(hits["hits"]):
        raise ApiError(500, "illegal_state_exception", "scores and hits are not the same length")
    for hit, score in zip(hits["hits"], scores, strict=True):
        hit["_score"] = score
    hits["hits"].sort(key=lambda h: -h["_score"])  # stable, like Collections.sort
    hits["max_score"] = hits["hits"][0]["_score"]
    return response


def _by_field(spec: dict[str, Any], hits: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    target = spec["target_field"]
    for hit in hits["hits"]:
        source = hit.get("_source") or {}
        value = source.get(target)
        if not isinstance(value, (int, float)):
            raise illegal_argument(f"The field to rerank [{target}] is not found or not a numeric value")
        if spec.get("keep_previous_score"):
            source[spec.get("previous_score_field", "previous_score")] = hit["_score"]
        if spec.get("remove_target_field"):
            source.pop(target)
        hit["_score"] = java_float(float(value))
    hits["hits"].sort(key=lambda h: -h["_score"])
    if hits["hits"]:
        hits["max_score"] = hits["hits"][0]["_score"]
    return response
