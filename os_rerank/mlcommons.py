"""ML Commons' vocabulary in one place: its REST paths, model states, and the reads a decision may rest on.

Freshness, learned on a real 2.19.1 node: `POST /_plugins/_ml/<kind>/_search` reads ML Commons' system indices
near-real-time. For about a second after a write, a search can miss a new resource, still return a deleted one,
or show a model as REGISTERED while `GET /_plugins/_ml/models/<id>` (realtime) already says DEPLOYED. So:
- searches only find *candidates*; every candidate is read again by id, and a 404 there means it is gone;
- what a resource *is* (its state, its connector, its group) comes from that GET, never from the search hit;
- a command that creates or deletes resources waits, before it returns, until search agrees with what it did
  (`await_search`), so the next command, in this process or another, finds what this one left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .errors import ClusterError

BASE = "/_plugins/_ml"
CONNECTORS = "connectors"
MODEL_GROUPS = "model_groups"
MODELS = "models"
KINDS = (CONNECTORS, MODEL_GROUPS, MODELS)

DEPLOYED = "DEPLOYED"
# States in which ML Commons holds the model on a node: it must be undeployed before its connector is updated or
# the model is deleted.
LOADED_STATES = frozenset({"DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING", "LOADED", "PARTIALLY_LOADED", "LOADING"})
FAILED_STATES = frozenset({"DEPLOY_FAILED", "LOAD_FAILED"})

# How long a command waits for search to agree with its writes (the system indices refresh every second).
SEARCH_SETTLE_SECONDS = 10.0
SEARCH_POLL_SECONDS = 0.2


def path(kind: str, resource_id: str | None = None, action: str | None = None) -> str:
    """`/_plugins/_ml/<kind>[/<id>][/<action>]`."""
    out = f"{BASE}/{kind}"
    if resource_id is not None:
        out += f"/{resource_id}"
    if action is not None:
        out += f"/{action}"
    return out


@dataclass(frozen=True)
class Found:
    """One ML Commons resource: its id and its body as a GET by id returns it (realtime)."""

    id: str
    body: dict[str, Any]

    @property
    def model_state(self) -> str:
        return str(self.body.get("model_state", "UNKNOWN"))

    @property
    def connector_id(self) -> str | None:
        value = self.body.get("connector_id")
        return str(value) if value else None

    @property
    def model_group_id(self) -> str | None:
        value = self.body.get("model_group_id")
        return str(value) if value else None


def search_ids(cluster: Cluster, kind: str, query: Mapping[str, Any]) -> list[str]:
    """Ids a search over `kind` returns for `query`: candidates only (the search can lag writes)."""
    body = {"query": dict(query), "size": 1000}
    try:
        result = cluster.request("POST", path(kind, "_search"), body=body, missing_ok=True)
    except ClusterError as exc:
        if "index_not_found" in exc.message or "no such index" in exc.message:
            return []  # a fresh cluster has no ML Commons system indices yet
        raise
    hits = ((result or {}).get("hits") or {}).get("hits") or []
    return sorted({str(h.get("_id")) for h in hits if h.get("_id")})


def get(cluster: Cluster, kind: str, resource_id: str) -> dict[str, Any] | None:
    """The resource's body, read by id (realtime), or None when it does not exist."""
    try:
        body = cluster.request("GET", path(kind, resource_id), missing_ok=True)
    except ClusterError as exc:
        if exc.status == 404:
            return None
        raise
    return dict(body) if isinstance(body, dict) else None


def find(cluster: Cluster, kind: str, query: Mapping[str, Any],
         keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> tuple[Found, ...]:
    """Every resource of `kind` the search finds for `query`, each confirmed by a GET by id and by `keep`."""
    out = []
    for resource_id in search_ids(cluster, kind, query):
        body = get(cluster, kind, resource_id)
        if body is not None and keep(body):
            out.append(Found(resource_id, body))
    return tuple(out)


def find_by_name(cluster: Cluster, kind: str, name: str | None) -> tuple[Found, ...]:
    """Every `kind` whose name is exactly `name` (term on name.keyword, confirmed on the realtime body)."""
    if not name:
        return ()
    return find(cluster, kind, {"term": {"name.keyword": name}}, lambda body: body.get("name") == name)


def models_using(cluster: Cluster, field_name: str, value: str) -> tuple[Found, ...]:
    """The models whose `field_name` (connector_id or model_group_id) is `value`, read by id.

    On 2.19.1 the model index maps `model_group_id` as a keyword but not `connector_id`, which is then mapped
    dynamically as analyzed text with a `.keyword` subfield: a term query on `connector_id` itself never matches an
    id with capitals or `-`. Both spellings are asked for; the GET by id decides.
    """
    query = {"bool": {"should": [{"term": {f"{field_name}.keyword": value}}, {"term": {field_name: value}}],
                      "minimum_should_match": 1}}
    return find(cluster, MODELS, query, lambda body: body.get(field_name) == value)


def await_search(cluster: Cluster, kind: str, query: Mapping[str, Any], *, present: Iterable[str] = (),
                 absent: Iterable[str] = (), timeout: float = SEARCH_SETTLE_SECONDS,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], float] = time.monotonic) -> bool:
    """Wait until a search for `query` returns every id in `present` and none in `absent`; False after `timeout`."""
    want, gone = set(present), set(absent)
    if not want and not gone:
        return True
    pause = sleep or cluster.sleep
    deadline = clock() + timeout
    while True:
        ids = set(search_ids(cluster, kind, query))
        if want <= ids and not gone & ids:
            return True
        if clock() >= deadline:
            return False
        pause(SEARCH_POLL_SECONDS)


def name_query(name: str) -> dict[str, Any]:
    return {"term": {"name.keyword": name}}
