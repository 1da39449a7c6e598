"""The Search Relevance Workbench (opensearch-search-relevance, 3.1+): query sets and imported judgments.

Modelled on opensearch-project/search-relevance 3.1.0.0 (see os_rerank/search/workbench.py for the files): the 403 while
`plugins.search_relevance.workbench_enabled` is not true, the name and description checks, the list answered as a
search response, and a rating that must be a string. Storage is immediate (no search lag modelled).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .http import Request, Response, Router
from .state import ApiError, ClusterState, now_ms

ENABLED = "plugins.search_relevance.workbench_enabled"
_DANGEROUS = re.compile(r'.*["\\<>]+.*', re.S)


def _invalid(text: Any) -> str | None:
    """TextValidationUtil.validateText's message, or None when valid."""
    if text is None:
        return "Text cannot be null"
    if text == "":
        return "Text cannot be empty"
    if len(text) > 2000:
        return "Text exceeds maximum length of 2000 characters"
    if _DANGEROUS.fullmatch(text):
        return "Text contains invalid characters (quotes, backslashes, or HTML tags are not allowed)"
    return None


class Workbench:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.stores: dict[str, dict[str, dict[str, Any]]] = {"query_sets": {}, "judgments": {}}

    def routes(self, router: Router) -> None:
        for kind in self.stores:
            base = f"/_plugins/_search_relevance/{kind}"
            router.add("PUT", base, self.put_query_set if kind == "query_sets" else self.put_judgment)
            router.add("GET", base + "(?:/(?P<id>[^/]+))?", lambda req, k=kind: self.get(req, k))
            router.add("DELETE", base + "/(?P<id>[^/]+)", lambda req, k=kind: self.delete(req, k))

    def _enabled(self) -> Response | None:
        value = self.state.transient.get(ENABLED, self.state.persistent.get(ENABLED, "false"))
        if str(value).lower() != "true":
            return Response(403, "Search Relevance Workbench is disabled")
        return None

    def _validated(self, body: dict[str, Any]) -> Response | None:
        problem = _invalid(body.get("name"))
        if problem:
            return Response(400, f"Invalid name: {problem}")
        if body.get("description") is not None:
            problem = _invalid(body["description"])
            if problem:
                return Response(400, f"Invalid description: {problem}")
        return None

    def put_query_set(self, req: Request) -> Response:
        body = req.json({})
        refused = self._enabled() or self._validated(body)
        if refused:
            return refused
        queries = body.get("querySetQueries") or []
        if len(queries) > 1000:
            return Response(403, "Query Set Limit Exceeded.")
        new_id = self.state.new_id()
        with self.state.lock:
            self.stores["query_sets"][new_id] = {
                "id": new_id, "name": body["name"], "description": body.get("description"),
                "sampling": body.get("sampling", "manual"), "timestamp": str(now_ms()),
                "querySetQueries": [{"queryText": q.get("queryText")} for q in queries]}
        return Response(200, {"query_set_id": new_id, "query_set_result": "CREATED"})

    def put_judgment(self, req: Request) -> Response:
        body = req.json({})
        refused = self._enabled() or self._validated(body)
        if refused:
            return refused
        if body.get("type") != "IMPORT_JUDGMENT":
            raise ApiError(400, "illegal_argument_exception", "Invalid or missing judgment type")
        for entry in body.get("judgmentRatings") or []:
            for rating in entry.get("ratings") or []:
                value = rating.get("rating")
                if not isinstance(value, str):  # ImportJudgmentsProcessor: (String) ratingInfo.get("rating")
                    raise ApiError(500, "class_cast_exception", f"class java.lang.{type(value).__name__.title()} "
                                   "cannot be cast to class java.lang.String")
                float(value)
        new_id = self.state.new_id()
        with self.state.lock:
            self.stores["judgments"][new_id] = {
                "id": new_id, "name": body["name"], "description": body.get("description"), "type": body["type"],
                "status": "COMPLETED", "timestamp": str(now_ms()), "metadata": {},
                "judgmentRatings": copy.deepcopy(body.get("judgmentRatings") or [])}
        return Response(200, {"judgment_id": new_id})

    def get(self, req: Request, kind: str) -> Response:
        refused = self._enabled()
        if refused:
            return refused
        with self.state.lock:
            store = self.stores[kind]
            wanted = req.match["id"]
            hits = [{"_index": f"search-relevance-{kind.rstrip('s')}", "_id": i, "_score": None,
                     "_source": copy.deepcopy(v)} for i, v in store.items() if wanted in (None, i)]
        return Response(200, {"took": 1, "timed_out": False,
                              "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None,
                                       "hits": hits}})

    def delete(self, req: Request, kind: str) -> Response:
        refused = self._enabled()
        if refused:
            return refused
        with self.state.lock:
            found = self.stores[kind].pop(req.match["id"], None)
        return Response(200 if found else 404, {"result": "deleted" if found else "not_found"})
