"""Indices, documents, lexical search (BM25) and search pipelines with the neural-search `rerank` processor
(docs/ml-commons.md#rerank-processor)."""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import time
import unicodedata
from typing import Any

from .http import Request, Response, Router
from .mlcommons import MLCommons
from .predict import java_float
from .state import ApiError, ClusterState, Index, illegal_argument, index_not_found, load_shape, now_ms

K1, B = 1.2, 0.75
_INDEX = r"(?P<index>[^/_][^/]*)"
_JAVA_EXCEPTIONS = {
    "illegal_argument_exception": "java.lang.IllegalArgumentException",
    "illegal_state_exception": "java.lang.IllegalStateException",
    "null_pointer_exception": "java.lang.NullPointerException",
    "status_exception": "OpenSearchStatusException",
    "script_exception": "ScriptException",
}


def tokens(text: Any) -> list[str]:
    """The standard analyzer, near enough: Unicode words, lower-cased, no stop words.

    A word is a maximal run of letters, digits and combining marks, as in Unicode word segmentation (UAX #29,
    which the standard tokenizer follows): Python's `\\w` would split Hindi words at their vowel signs.
    """
    out: list[str] = []
    current: list[str] = []
    for ch in str(text).lower():
        if unicodedata.category(ch)[0] in "LNM":
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def java_string(value: Any) -> str:
    """`String.valueOf` of a parsed `_source` value, as neural-search < 3.6 builds contexts."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else f"{value:.1f}"
    if isinstance(value, list):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_string(v)}" for k, v in value.items()) + "}"
    return str(value)


def _source_path(source: dict[str, Any], path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _dynamic_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"properties": {k: _dynamic_mapping(v) for k, v in value.items()}}
    if isinstance(value, list) and value:
        return _dynamic_mapping(value[0])
    return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def _nested_settings_keep_null(settings: dict[str, Any]) -> dict[str, Any]:
    """Flat `index.*` keys of a settings update; a null value (which removes the setting) stays None."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            key = prefix if prefix.startswith("index.") else "index." + prefix
            flat[key] = None if value is None else (str(value).lower() if isinstance(value, bool) else str(value))

    walk("", settings)
    return flat


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """`index.a.b` flat keys as nested objects, as OpenSearch shows settings without `flat_settings`."""
    out: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


class Search:
    def __init__(self, state: ClusterState, ml: MLCommons | None, *, refresh_interval: float = 1.0,
                 common_module: bool = False) -> None:
        self.state = state
        # OpenSearch's search-pipeline-common module (oversample, truncate_hits, ...): in a full distribution, not
        # in the minimal one `os-rerank local` builds nodes from.
        self.common_module = common_module
        self.ml = ml
        self.refresh_interval = refresh_interval
        from .neural import IngestPipelines

        self.ingest = IngestPipelines(self)

    @property
    def neural(self) -> bool:
        return "opensearch-neural-search" in self.state.plugins and self.state.version >= (2, 12, 0)

    def routes(self, router: Router) -> None:
        self.ingest.routes(router)
        router.add("PUT", "/_search/pipeline/(?P<name>[^/]+)", self.put_pipeline)
        router.add("GET", "/_search/pipeline(?:/(?P<name>[^/]+))?", self.get_pipeline)
        router.add("DELETE", "/_search/pipeline/(?P<name>[^/]+)", self.delete_pipeline)
        router.add("GET|POST", "/_search", self.search)
        router.add("POST|PUT", "/_bulk", self.bulk)
        router.add("POST|GET", "/_refresh", self.refresh)
        router.add("PUT", f"/{_INDEX}", self.create_index)
        router.add("HEAD", f"/{_INDEX}", self.index_exists)
        router.add("GET", f"/{_INDEX}", self.get_index)
        router.add("DELETE", f"/{_INDEX}", self.delete_index)
        router.add("GET", f"/{_INDEX}/_mapping", self.get_mapping)
        router.add("PUT|POST", f"/{_INDEX}/_mapping", self.put_mapping)
        router.add("GET", "/(?P<index>[^/]+)/_settings(?:/(?P<name>[^/]+))?", self.get_index_settings)
        router.add("PUT", f"/{_INDEX}/_settings", self.put_index_settings)
        router.add("POST|PUT", f"/{_INDEX}/_bulk", self.bulk)
        router.add("POST|GET", f"/{_INDEX}/_refresh", self.refresh)
        router.add("GET|POST", f"/{_INDEX}/_count", self.count)
        router.add("GET|POST", f"/{_INDEX}/_search", self.search)
        router.add("PUT|POST", f"/{_INDEX}/_doc/(?P<id>[^/]+)", self.put_doc)
        router.add("GET", f"/{_INDEX}/_doc/(?P<id>[^/]+)", self.get_doc)

    # --- indices ------------------------------------------------------------------------------------------------

    def _index(self, name: str) -> Index:
        index = self.state.indices.get(name)
        if index is None:
            raise index_not_found(name)
        return index

    def _new_index(self, name: str, body: dict[str, Any]) -> Index:
        if name != name.lower() or name.startswith(("-", "+")) or any(c in name for c in '\\/*?"<>| ,#:'):
            raise ApiError(400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase",
                           extra={"index": name, "index_uuid": "_na_"})
        if name in self.state.indices:
            index = self.state.indices[name]
            raise ApiError(400, "resource_already_exists_exception", f"index [{name}/{index.uuid}] already exists",
                           extra={"index": name, "index_uuid": index.uuid})
        settings = {"index.number_of_shards": "1", "index.number_of_replicas": "1"}
        settings.update(_nested_settings_keep_null(body.get("settings") or {}))
        shards = str(settings.get("index.number_of_shards"))
        if not shards.isdigit() or int(shards) < 1:  # as a 2.19.1 node words it (os-rerank's permission probe)
            raise ApiError(400, "illegal_argument_exception",
                           f"Failed to parse value [{shards}] for setting [index.number_of_shards] must be >= 1")
        mappings = copy.deepcopy(body.get("mappings") or {})
        index = Index(name, self.state.new_id()[:22], mappings, settings)
        self.state.indices[name] = index
        return index

    def create_index(self, req: Request) -> Response:
        body = req.json({})
        with self.state.lock:
            self._new_index(req.match["index"], body)
        return Response(200, {"acknowledged": True, "shards_acknowledged": True, "index": req.match["index"]})

    def index_exists(self, req: Request) -> Response:
        return Response(200 if req.match["index"] in self.state.indices else 404, None)

    def _names(self, expr: str) -> list[str]:
        names: list[str] = []
        for part in expr.split(","):
            if part in ("_all", "*") or "*" in part:
                names += [n for n in self.state.indices if fnmatch.fnmatch(n, "*" if part == "_all" else part)]
            else:
                self._index(part)
                names.append(part)
        return names

    def get_index(self, req: Request) -> Response:
        with self.state.lock:
            out = {}
            for name in self._names(req.match["index"]):
                index = self.state.indices[name]
                settings = dict(index.settings, **{"index.uuid": index.uuid, "index.provided_name": name,
                                                   "index.creation_date": str(now_ms()),
                                                   "index.replication.type": "DOCUMENT",
                                                   "index.version.created": "136408027"})
                nested: dict[str, Any] = {}
                for key, value in settings.items():
                    node = nested
                    *parents, leaf = key.split(".")
                    for p in parents:
                        node = node.setdefault(p, {})
                    node[leaf] = value
                out[name] = {"aliases": {}, "mappings": copy.deepcopy(index.mappings), "settings": nested}
        return Response(200, out)

    def get_mapping(self, req: Request) -> Response:
        with self.state.lock:
            return Response(200, {n: {"mappings": copy.deepcopy(self.state.indices[n].mappings)}
                                  for n in self._names(req.match["index"])})

    def put_mapping(self, req: Request) -> Response:
        """Properties are merged; `_meta` is replaced as a whole (seen on 2.19.1: a second PUT drops other keys)."""
        body = req.json({})
        with self.state.lock:
            for name in self._names(req.match["index"]):
                mappings = self.state.indices[name].mappings
                if "_meta" in body:
                    mappings["_meta"] = copy.deepcopy(body["_meta"])
                for field, spec in (body.get("properties") or {}).items():
                    mappings.setdefault("properties", {}).setdefault(field, copy.deepcopy(spec))
        return Response(200, {"acknowledged": True})

    _STATIC = ("index.number_of_shards",)
    _DEFAULTS = {"index.search.default_pipeline": "_none", "index.default_pipeline": "_none",
                 "index.final_pipeline": "_none"}

    def get_index_settings(self, req: Request) -> Response:
        """`GET /<index>/_settings[/<name>]`: indices without a matching setting are left out, as on a node."""
        pattern = req.match["name"]
        flat = req.flag("flat_settings")
        with self.state.lock:
            out: dict[str, Any] = {}
            for name in self._names(req.match["index"]):
                index = self.state.indices[name]
                settings = dict(index.settings, **{"index.uuid": index.uuid, "index.provided_name": name})
                entry: dict[str, Any] = {}
                chosen = {k: v for k, v in settings.items() if pattern is None or fnmatch.fnmatch(k, pattern)}
                if chosen or pattern is None:
                    entry["settings"] = chosen
                if req.flag("include_defaults"):
                    entry["defaults"] = {k: v for k, v in self._DEFAULTS.items() if k not in settings
                                         and (pattern is None or fnmatch.fnmatch(k, pattern))}
                if entry:
                    out[name] = {k: (v if flat else nest(v)) for k, v in entry.items()}
        return Response(200, out)

    def put_index_settings(self, req: Request) -> Response:
        body = req.json({})
        if isinstance(body, dict) and "settings" in body:
            body = body["settings"]
        flat = _nested_settings_keep_null(body if isinstance(body, dict) else {})
        static = [k for k in flat if k in self._STATIC]
        if static:
            raise illegal_argument(f"Can't update non dynamic settings [[{', '.join(static)}]] for open indices "
                                   f"[[{req.match['index']}]]")
        with self.state.lock:
            for name in self._names(req.match["index"]):
                settings = self.state.indices[name].settings
                for key, value in flat.items():
                    if value is None:
                        settings.pop(key, None)
                    else:
                        settings[key] = value
        return Response(200, {"acknowledged": True})

    def default_pipeline(self, names: list[str]) -> str | None:
        """The pipeline a search naming none runs through (SearchPipelineService.resolvePipeline, 2.19): the
        targeted indices' `index.search.default_pipeline`, the first set one wins, two different ones give none.
        A value naming no pipeline is not checked until here."""
        chosen: str | None = None
        for name in names:
            value = self.state.indices[name].settings.get("index.search.default_pipeline")
            if value is None:
                continue
            if chosen is None:
                chosen = value
            elif chosen != value:
                return None
        return None if chosen in (None, "_none") else chosen

    def delete_index(self, req: Request) -> Response:
        with self.state.lock:
            for name in self._names(req.match["index"]):
                del self.state.indices[name]
        return Response(200, {"acknowledged": True})

    # --- documents ----------------------------------------------------------------------------------------------

    def _write_doc(self, index: Index, doc_id: str, source: dict[str, Any], op: str) -> dict[str, Any]:
        properties = index.mappings.setdefault("properties", {})
        for field, value in source.items():
            if field not in properties:
                properties[field] = _dynamic_mapping(value)
        existed = doc_id in index.docs
        try:
            source = self.ingest.run(index, source)  # the index's default ingest pipeline (neural.py)
        except ApiError as exc:  # a bulk reports it per document
            return {"_index": index.name, "_id": doc_id, "status": exc.status,
                    "error": {"type": exc.type, "reason": exc.reason}}
        if op == "create" and existed:
            return {"_index": index.name, "_id": doc_id, "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists (current version "
                          f"[{index.versions[doc_id]}])", "index": index.name, "shard": "0",
                "index_uuid": index.uuid}}
        index.docs[doc_id] = copy.deepcopy(source)
        index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
        index.seq_no += 1
        index.last_write = time.monotonic()
        return {"_index": index.name, "_id": doc_id, "_version": index.versions[doc_id],
                "result": "updated" if existed else "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": index.seq_no,
                "_primary_term": 1, "status": 200 if existed else 201}

    def bulk(self, req: Request) -> Response:
        started = time.monotonic()
        lines = [line for line in req.body.decode("utf-8").split("\n") if line.strip()]
        items: list[dict[str, Any]] = []
        touched: set[str] = set()
        with self.state.lock:
            i = 0
            while i < len(lines):
                try:
                    action = json.loads(lines[i])
                    (op, meta), = action.items()
                except ValueError as exc:
                    raise illegal_argument(f"Malformed action/metadata line [{i + 1}], expected START_OBJECT") from exc
                name = meta.get("_index") or (req.match["index"] if req.match and "index" in req.match.groupdict()
                                              else None)
                if name is None:
                    raise ApiError(400, "action_request_validation_exception",
                                   "Validation Failed: 1: index is missing;")
                index = self.state.indices.get(name) or self._new_index(name, {})
                touched.add(name)
                doc_id = str(meta.get("_id") or self.state.new_id())
                if op == "delete":
                    i += 1
                    found = index.docs.pop(doc_id, None) is not None
                    index.visible.discard(doc_id)
                    items.append({op: {"_index": name, "_id": doc_id, "result": "deleted" if found else "not_found",
                                       "status": 200 if found else 404}})
                    continue
                if op not in ("index", "create"):
                    raise illegal_argument(f"Malformed action/metadata line [{i + 1}], unsupported action [{op}]")
                source = json.loads(lines[i + 1])
                i += 2
                items.append({op: self._write_doc(index, doc_id, source, op)})
            if req.params.get("refresh") in ("", "true", "wait_for"):
                for name in touched:
                    self._refresh(self.state.indices[name])
                if req.params.get("refresh") != "wait_for":
                    for item in items:
                        next(iter(item.values()))["forced_refresh"] = True
        errors = any("error" in next(iter(item.values())) for item in items)
        return Response(200, {"took": int((time.monotonic() - started) * 1000), "errors": errors, "items": items})

    def put_doc(self, req: Request) -> Response:
        source = req.json({})
        with self.state.lock:
            name = req.match["index"]
            index = self.state.indices.get(name) or self._new_index(name, {})
            item = self._write_doc(index, req.match["id"], source, "index")
            if req.params.get("refresh") in ("", "true", "wait_for"):
                self._refresh(index)
        status = item.pop("status")
        return Response(status, item)

    def get_doc(self, req: Request) -> Response:
        with self.state.lock:
            index = self._index(req.match["index"])
            doc_id = req.match["id"]
            if doc_id not in index.docs:  # GET is real-time: it sees unrefreshed documents
                return Response(404, {"_index": index.name, "_id": doc_id, "found": False})
            return Response(200, {"_index": index.name, "_id": doc_id, "_version": index.versions[doc_id],
                                  "_seq_no": 0, "_primary_term": 1, "found": True,
                                  "_source": copy.deepcopy(index.docs[doc_id])})

    def _refresh(self, index: Index) -> None:
        index.visible = set(index.docs)

    def refresh(self, req: Request) -> Response:
        with self.state.lock:
            names = self._names(req.match["index"]) if req.match and req.match.groupdict().get("index") else list(
                self.state.indices)
            for name in names:
                self._refresh(self.state.indices[name])
        return Response(200, {"_shards": {"total": 2 * len(names), "successful": len(names), "failed": 0}})

    def _searchable(self, index: Index) -> list[str]:
        """Visible ids in doc order; the periodic refresh (every `refresh_interval` s) happens lazily here."""
        interval = index.settings.get("index.refresh_interval")
        automatic = interval != "-1"
        if automatic and time.monotonic() - index.last_write >= self.refresh_interval:
            self._refresh(index)
        return [doc_id for doc_id in index.docs if doc_id in index.visible]

    # --- queries ------------------------------------------------------------------------------------------------

    def _field_type(self, index: Index, field: str) -> str:
        node: Any = index.mappings.get("properties", {})
        parts = field.split(".")
        for k, part in enumerate(parts):
            spec = node.get(part) if isinstance(node, dict) else None
            if spec is None:
                return "text"
            if k == len(parts) - 1:
                return spec.get("type", "object")
            if part in node and "fields" in spec and parts[k + 1] in spec["fields"]:
                return spec["fields"][parts[k + 1]].get("type", "text")
            node = spec.get("properties", {})
        return "text"

    def _field_tokens(self, index: Index, doc: dict[str, Any], field: str) -> list[str]:
        if field.endswith(".keyword"):
            value = _source_path(doc, field.removesuffix(".keyword"))
        else:
            value = _source_path(doc, field)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if self._field_type(index, field) == "keyword":
            return [str(v) for v in values]
        return [t for v in values for t in tokens(v)]

    def _bm25(self, index: Index, ids: list[str], field: str, terms: list[str]) -> dict[str, float]:
        per_doc = {i: self._field_tokens(index, index.docs[i], field) for i in ids}
        with_field = [i for i in ids if per_doc[i]]
        if not with_field or not terms:
            return {}
        avgdl = sum(len(per_doc[i]) for i in with_field) / len(with_field)
        scores: dict[str, float] = {}
        for term in terms:
            df = sum(1 for i in with_field if term in per_doc[i])
            if df == 0:
                continue
            idf = math.log(1 + (len(with_field) - df + 0.5) / (df + 0.5))
            for i in with_field:
                tf = per_doc[i].count(term)
                if tf:
                    norm = K1 * (1 - B + B * len(per_doc[i]) / avgdl)
                    scores[i] = scores.get(i, 0.0) + idf * tf / (tf + norm)
        return scores

    def _query_terms(self, index: Index, field: str, text: Any) -> list[str]:
        return [str(text)] if self._field_type(index, field) == "keyword" else tokens(text)

    def _eval(self, index: Index, ids: list[str], query: dict[str, Any] | None) -> dict[str, float]:
        """doc id -> score for the docs that match."""
        if not query:
            return dict.fromkeys(ids, 1.0)
        if len(query) != 1:
            raise ApiError(400, "parsing_exception", "[query] malformed query, expected one key")
        (kind, spec), = query.items()
        if kind == "match_all":
            return dict.fromkeys(ids, float(spec.get("boost", 1.0)) if isinstance(spec, dict) else 1.0)
        if kind == "match":
            (field, value), = spec.items()
            text = value.get("query") if isinstance(value, dict) else value
            scores = self._bm25(index, ids, field, self._query_terms(index, field, text))
            if isinstance(value, dict) and value.get("operator", "or").lower() == "and":
                needed = set(self._query_terms(index, field, text))
                scores = {i: s for i, s in scores.items() if needed <= set(self._field_tokens(index, index.docs[i],
                                                                                              field))}
            return scores
        if kind == "multi_match":
            best: dict[str, float] = {}
            for field in spec.get("fields") or ["*"]:
                field = field.split("^")[0]
                for i, s in self._bm25(index, ids, field, self._query_terms(index, field, spec["query"])).items():
                    best[i] = max(best.get(i, 0.0), s)
            return best
        if kind in ("term", "terms"):
            (field, value), = ((k, v) for k, v in spec.items() if k != "boost")
            wanted = value if isinstance(value, list) else [value.get("value") if isinstance(value, dict) else value]
            return {i: 1.0 for i in ids
                    if any(str(w) in self._field_tokens(index, index.docs[i], field) for w in wanted)}
        if kind == "ids":
            return {i: 1.0 for i in ids if i in spec.get("values", [])}
        if kind == "bool":
            return self._eval_bool(index, ids, spec)
        if kind == "neural" and self.neural:
            from .neural import neural_scores

            return neural_scores(self, index, ids, spec)
        raise ApiError(400, "parsing_exception", f"unknown query [{kind}]")

    def _eval_bool(self, index: Index, ids: list[str], spec: dict[str, Any]) -> dict[str, float]:
        def clauses(key: str) -> list[dict[str, Any]]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        candidates = set(ids)
        total: dict[str, float] = dict.fromkeys(ids, 0.0)
        for q in clauses("must"):
            got = self._eval(index, ids, q)
            candidates &= set(got)
            for i, s in got.items():
                total[i] += s
        for q in clauses("filter"):
            candidates &= set(self._eval(index, ids, q))
        for q in clauses("must_not"):
            candidates -= set(self._eval(index, ids, q))
        should = clauses("should")
        if should:
            matched: set[str] = set()
            for q in should:
                got = self._eval(index, ids, q)
                matched |= set(got)
                for i, s in got.items():
                    total[i] += s
            if not clauses("must") and not clauses("filter"):
                candidates &= matched
        return {i: total[i] for i in ids if i in candidates}

    # --- _count and _search -------------------------------------------------------------------------------------

    def _body(self, req: Request) -> dict[str, Any]:
        body = req.json({})
        if not isinstance(body, dict):
            raise ApiError(400, "parse_exception", "request body is required")
        return body

    def count(self, req: Request) -> Response:
        body = self._body(req)
        if "search_pipeline" in req.params:
            raise illegal_argument(f"request [{req.path}] contains unrecognized parameter: [search_pipeline]")
        with self.state.lock:
            total = 0
            names = self._names(req.match["index"])
            for name in names:
                index = self.state.indices[name]
                total += len(self._eval(index, self._searchable(index), body.get("query")))
            default = self.default_pipeline(names)
        if default is not None:  # seen on 2.19.1: _count runs the index's default search pipeline too
            from .rerank import run_response_processors

            pipeline = self.state.pipelines.get(default)
            if pipeline is None:
                raise illegal_argument(f"Pipeline {default} is not defined")
            shell = {"hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": []}}
            run_response_processors(self, default, pipeline, body, shell)
        return Response(200, {"count": total, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})

    def search(self, req: Request) -> Response:
        started = time.monotonic()
        body = self._body(req)
        for key in ("size", "from"):
            if key in req.params:
                body[key] = int(req.params[key])
        ext = body.get("ext") or {}
        for key in ext:
            if key != "rerank" or not self.neural:
                raise ApiError(400, "named_object_not_found_exception",
                               f"[1:2] unknown field [{key}]")
        pipeline_name = req.params.get("search_pipeline")
        expr = req.match["index"] if req.match and req.match.groupdict().get("index") else "_all"
        if pipeline_name is None and expr != "_all":
            with self.state.lock:
                pipeline_name = self.default_pipeline(self._names(expr))
        pipeline = None
        if pipeline_name and pipeline_name != "_none":
            pipeline = self.state.pipelines.get(pipeline_name)
            if pipeline is None:
                raise illegal_argument(f"Pipeline {pipeline_name} is not defined")
        context: dict[str, Any] = {}
        if pipeline is not None:
            from .rerank import run_request_processors

            body = run_request_processors(self, pipeline, body, context)
        with self.state.lock:
            matched: list[tuple[float, int, str, str]] = []
            order = 0
            query = body.get("query")
            for name in self._names(expr):
                index = self.state.indices[name]
                if isinstance(query, dict) and "hybrid" in query and self.neural:
                    from .neural import hybrid_scores

                    scores = hybrid_scores(self, index, self._searchable(index), query["hybrid"],
                                           int(body.get("size", 10)), pipeline)
                else:
                    scores = self._eval(index, self._searchable(index), query)
                for doc_id, score in scores.items():
                    matched.append((java_float(score), order, name, doc_id))
                    order += 1
            matched.sort(key=lambda m: (-m[0], m[1]))
            size, start = int(body.get("size", 10)), int(body.get("from", 0))
            hits = [self._hit(self.state.indices[name], doc_id, score, body.get("_source", True))
                    for score, _, name, doc_id in matched[start:start + size]]
        response = load_shape("search")
        response["took"] = int((time.monotonic() - started) * 1000)
        hits_section: dict[str, Any] = {}
        track = body.get("track_total_hits", 10000)
        if track is True:
            hits_section["total"] = {"value": len(matched), "relation": "eq"}
        elif track is not False:
            cap = int(track)
            hits_section["total"] = {"value": min(len(matched), cap), "relation": "eq" if len(matched) <= cap
                                     else "gte"}
        hits_section["max_score"] = matched[0][0] if matched and size > 0 else None
        hits_section["hits"] = hits
        response["hits"] = hits_section
        if pipeline is not None:
            from .rerank import run_response_processors

            response = run_response_processors(self, pipeline_name, pipeline, body, response, context)
            # Seen on 2.19.1: a search through a pipeline answers with an (empty) profile section.
            response.setdefault("profile", {"shards": []})
        return Response(200, response)

    @staticmethod
    def _hit(index: Index, doc_id: str, score: float, source_filter: Any) -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": index.name, "_id": doc_id, "_score": score}
        source = copy.deepcopy(index.docs[doc_id])
        if source_filter is False:
            return hit
        includes: list[str] = []
        excludes: list[str] = []
        if isinstance(source_filter, str):
            includes = [source_filter]
        elif isinstance(source_filter, list):
            includes = source_filter
        elif isinstance(source_filter, dict):
            includes = source_filter.get("includes") or source_filter.get("include") or []
            excludes = source_filter.get("excludes") or source_filter.get("exclude") or []
        if includes:
            source = {k: v for k, v in source.items() if any(fnmatch.fnmatch(k, p) for p in includes)}
        if excludes:
            source = {k: v for k, v in source.items() if not any(fnmatch.fnmatch(k, p) for p in excludes)}
        hit["_source"] = source
        return hit

    # --- pipelines ----------------------------------------------------------------------------------------------

    def put_pipeline(self, req: Request) -> Response:
        from .rerank import validate_pipeline

        body = req.json({})
        validate_pipeline(self, body)
        with self.state.lock:
            self.state.pipelines[req.match["name"]] = copy.deepcopy(body)
        return Response(200, {"acknowledged": True})

    def get_pipeline(self, req: Request) -> Response:
        name = req.match["name"]
        with self.state.lock:
            if name is None:
                return Response(200, copy.deepcopy(self.state.pipelines))
            names = [n for n in self.state.pipelines if any(fnmatch.fnmatch(n, p) for p in name.split(","))]
            if not names:
                return Response(404, {})
            return Response(200, {n: copy.deepcopy(self.state.pipelines[n]) for n in names})

    def delete_pipeline(self, req: Request) -> Response:
        name = req.match["name"]
        with self.state.lock:
            if name not in self.state.pipelines:
                raise ApiError(404, "resource_not_found_exception", f"pipeline [{name}] is missing")
            del self.state.pipelines[name]
        return Response(200, {"acknowledged": True})


def java_exception_name(type_: str) -> str:
    return _JAVA_EXCEPTIONS.get(type_, type_)
