"""ML Commons' vocabulary in one place: its REST paths, model states, and the reads a decision may rest on.

Freshness, learned on a real 2.19.1 node: `POST /_plugins/_ml/<kind>/_search` reads ML Commons' system indices
near-real-time. For about a second after a write, a search can miss a new resource, still return a deleted one,
or show a model as REGISTERED while `GET /_plugins/_ml/models/<id>` (realtime) already says DEPLOYED. So:
- searches only find *candidates*; every candidate is read again by id, and a 404 there means it is gone;
- what a resource *is* (its state, its connector, its group) comes from that GET, never from the search hit;
- a command that creates or deletes resources waits, before it returns, until search agrees with what it did
  (`await_search`), so the next command, in this process or another, finds what this one left.

Every command speaks to ML Commons through this module: its paths, the model states that mean "held on a node"
or "failed", the cluster settings it reads, finding exactly one resource by name, and deploy-and-wait. A second
spelling of any of these is a bug waiting to drift (two "loaded" state sets once disagreed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ClusterError

if TYPE_CHECKING:  # annotations only: this module sits below the transport, so render (pure) can use its paths
    from .cluster import Cluster

BASE = "/_plugins/_ml"
CONNECTORS = "connectors"
MODEL_GROUPS = "model_groups"
MODELS = "models"
KINDS = (CONNECTORS, MODEL_GROUPS, MODELS)
TASKS = "tasks"
# How a kind reads in a message: "2 connectors are named ...".
NOUNS = {CONNECTORS: "connector", MODEL_GROUPS: "model group", MODELS: "model"}
# Where a resource of each kind is created (ML Commons says `_register` for groups and models).
CREATE_ACTIONS = {CONNECTORS: "_create", MODEL_GROUPS: "_register", MODELS: "_register"}

# --- model states (MLModelState) ---------------------------------------------------------------------------------
DEPLOYED = "DEPLOYED"
# States in which ML Commons holds the model on a node: it must be undeployed before its connector is updated or
# the model is deleted. The LOAD* names are the pre-2.7 spellings of the DEPLOY* ones.
LOADED_STATES = frozenset({"DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING", "LOADED", "PARTIALLY_LOADED", "LOADING"})
# States a deploy ends in when it failed: waiting longer changes nothing, so deploy-and-wait stops at once.
FAILED_STATES = frozenset({"DEPLOY_FAILED", "LOAD_FAILED"})
# States a registration task ends in without a model.
TASK_FAILED_STATES = frozenset({"FAILED", "CANCELLED", "COMPLETED_WITH_ERROR"})

# --- cluster settings os-rerank reads and writes ------------------------------------------------------------------
TRUSTED_REGEX = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
PRIVATE_IP_SINCE: tuple[int, int, int] = (2, 15, 0)  # the setting exists from this version
MODEL_ACCESS_CONTROL = "plugins.ml_commons.model_access_control_enabled"
CONNECTOR_ACCESS_CONTROL = "plugins.ml_commons.connector_access_control_enabled"

# Deploy polling: at most `timeout / poll` GETs, `poll` seconds apart.
DEPLOY_POLL_SECONDS = 1.0
DEPLOY_TIMEOUT_SECONDS = 120.0

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


def create_path(kind: str) -> str:
    """Where a resource of `kind` is created."""
    return path(kind, CREATE_ACTIONS[kind])


def predict_path(model_id: str, algorithm: str = "text_similarity") -> str:
    """Where a model is asked: a text_similarity model for scores, a text_embedding model for vectors."""
    return f"{BASE}/_predict/{algorithm}/{model_id}"


# --- the trusted-endpoint regex -----------------------------------------------------------------------------------

_JAVA_META = set("\\.[]{}()<>*+-=!?^$|&~#")


def java_regex_quote(text: str) -> str:
    """`text` with every regex metacharacter backslash-escaped; the same pattern in Java and Python regex."""
    return "".join("\\" + ch if ch in _JAVA_META else ch for ch in text)


def url_regex(url: str) -> str:
    """The anchored regex that admits exactly the connector URL."""
    return f"^{java_regex_quote(url)}$"


def regex_admits(pattern: str, url: str) -> bool:
    """Whether `pattern` matches the whole URL (Python's fullmatch standing in for Java's Matcher.matches())."""
    try:
        return re.fullmatch(pattern, url) is not None
    except re.error:
        return False


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


def only(found: tuple[Found, ...], kind: str, name: str) -> Found | None:
    """The one resource in `found`, None when there is none; ClusterError when several share the name."""
    if len(found) > 1:
        noun = NOUNS[kind]
        ids = ", ".join(f.id for f in found)
        raise ClusterError(
            f"{len(found)} {noun}s are named {name!r} ({ids}); os-rerank will not guess which one is its own",
            fix=f"delete all but one (or run `os-rerank teardown`, which removes every {noun} with this name), "
            "then run setup again",
        )
    return found[0] if found else None


def find_one(cluster: Cluster, kind: str, name: str, *, missing_fix: str = "run `os-rerank setup` first") -> Found:
    """The one `kind` named `name`; ClusterError when there is none or several."""
    found = only(find_by_name(cluster, kind, name), kind, name)
    if found is None:
        raise ClusterError(f"no {NOUNS[kind]} named {name!r} on the cluster", fix=missing_fix)
    return found


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


# --- deploy and undeploy ------------------------------------------------------------------------------------------


def wait_deployed(cluster: Cluster, model_id: str, *, timeout: float = DEPLOY_TIMEOUT_SECONDS,
                  poll: float = DEPLOY_POLL_SECONDS, command: str = "setup", context: str = "",
                  timeout_flag: bool = True) -> None:
    """Poll the model (GET by id, realtime) until DEPLOYED; ClusterError at once on a failed state, or after `timeout`.

    `command` is what the user runs again; `context` ends the failure's first sentence ("after the credential
    update"); `timeout_flag`: whether the command takes --timeout.
    """
    state = "UNKNOWN"
    for _ in range(max(1, int(timeout / poll) if poll > 0 else 1)):
        state = get_state(cluster, model_id)
        if state == DEPLOYED:
            return
        if state in FAILED_STATES:
            raise ClusterError(
                f"model {model_id} is {state}{context}",
                fix=f"look at GET {path(MODELS, model_id)} and the cluster log; for remote models this is usually a "
                f"circuit breaker (2.12-2.14) or a connector the node cannot use; then run {command} again",
            )
        cluster.sleep(poll)
    more = ", or raise --timeout" if timeout_flag else ""
    raise ClusterError(f"model {model_id} is still {state} after {timeout:g}s",
                       fix=f"check `os-rerank status`, wait and run {command} again{more}")


def get_state(cluster: Cluster, model_id: str) -> str:
    """The model's state, read by id (realtime); UNKNOWN when the body has none."""
    return str((cluster.request("GET", path(MODELS, model_id)) or {}).get("model_state", "UNKNOWN"))


def deploy(cluster: Cluster, model_id: str, *, timeout: float = DEPLOY_TIMEOUT_SECONDS,
           poll: float = DEPLOY_POLL_SECONDS, command: str = "setup", context: str = "",
           timeout_flag: bool = True) -> None:
    """Deploy `model_id` and wait until it is DEPLOYED (`wait_deployed`)."""
    cluster.request("POST", path(MODELS, model_id, "_deploy"))
    wait_deployed(cluster, model_id, timeout=timeout, poll=poll, command=command, context=context,
                  timeout_flag=timeout_flag)


def undeploy(cluster: Cluster, model_id: str) -> None:
    """Undeploy `model_id`; a model already gone is fine."""
    cluster.request("POST", path(MODELS, model_id, "_undeploy"), missing_ok=True)


def task_model_id(cluster: Cluster, task_id: str | None, *, timeout: float = DEPLOY_TIMEOUT_SECONDS,
                  poll: float = DEPLOY_POLL_SECONDS) -> str:
    """The model id a registration task produced, polling the task; ClusterError when it failed or took too long."""
    if not task_id:
        raise ClusterError("model register returned neither model_id nor task_id")
    for _ in range(max(1, int(timeout / poll) if poll > 0 else 1)):
        task = cluster.request("GET", path(TASKS, task_id)) or {}
        if task.get("model_id"):
            return str(task["model_id"])
        if task.get("state") in TASK_FAILED_STATES:
            raise ClusterError(f"model registration task {task_id} {task.get('state')}: {task.get('error')}")
        cluster.sleep(poll)
    raise ClusterError(f"model registration task {task_id} did not finish within {timeout:g}s",
                       fix="raise --timeout, or look at GET " + path(TASKS, task_id))
