"""Every request os-rerank sends, declared once with the security-plugin permission(s) it needs. Pure.

`REQUESTS` is the table: method, path template, the actions the security plugin checks, on which index, the step
that sends it and the commands that run that step. From it come the role `os-rerank render --what role` prints,
the diagnosis of a 403 (which step needed which action, on what), and the probes `plan` and `setup` send to find
every missing permission at once (access.py). A test sends every command through the double and fails when a
request matches no row (tests/conftest.py), and a test on the secured real node runs every command as a user that
holds exactly the printed role.

The action names were observed on OpenSearch 2.19.1 with the security plugin, by running each command as a user
whose role grew one 403 at a time; ML Commons declares them as `NAME` in
common/src/main/java/org/opensearch/ml/common/transport/**/ML*Action.java (2.19.1.0). Two facts the table rests
on: `GET /_cat/plugins` needs both cluster:monitor/state and cluster:monitor/nodes/info; `_undeploy` needs
undeploy_models (the REST action) and undeploy_model (what it fans out to); a bulk load needs
indices:data/write/bulk[s] and indices:data/write/index on the index, and no cluster permission.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config import Config

# Which index a row's index permissions apply to; `index_names` turns them into names for a config.
TEST_INDEX = "test index"
EVAL_INDEX = "eval index"
LOCK_INDEX = "lock index"
ALL_INDICES = "all indices"  # GET /_all/_settings: the security plugin checks the action on every index
LOCK_PATTERN = "os-rerank-lock-*"  # lock indices hold only a _meta: a pattern over them grants nothing else

# How plan checks a permission before anything is written (access.py).
READ = "read"  # the request itself is a read: sent as is
ABSENT = "absent"  # sent to an id or name that does not exist: 404 when allowed, 403 when not
INVALID = "invalid"  # sent with a body the cluster rejects after the permission check: 400 when allowed
NONE = "none"  # cannot be checked without changing something

ROLE_NAME = "os_rerank_operator"
ALL_COMMANDS = ("plan", "setup", "verify", "status", "teardown", "search", "eval", "rotate-credentials", "promote",
                "rollback", "workbench-export")
_WRITERS = ("setup", "teardown", "rotate-credentials")
_LOCKED = ("setup", "teardown", "rotate-credentials", "eval", "promote", "rollback")  # they take the lock


@dataclass(frozen=True)
class Need:
    """One kind of request: what it needs (cluster actions, or index actions on `indices`) and why it is sent."""

    method: str
    path: str  # a template: {id} an ML Commons id, {index} an index name, {name} a pipeline name
    actions: tuple[str, ...]
    step: str
    commands: tuple[str, ...]
    indices: tuple[str, ...] = ()  # empty: cluster permissions
    probe: str = NONE
    admin: bool = False  # an admin step: not in the operator's role
    with_access: bool = False  # sent only when the config sets model.access
    with_embedding: bool = False  # sent only when the config has an embedding section (dense.py)

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and _pattern(self.path).fullmatch(path.split("?", 1)[0]) is not None


_SR = "cluster:admin/opensearch/search_relevance/"


def _ml(kind: str) -> str:
    return f"cluster:admin/opensearch/ml/{kind}"


_READS = ALL_COMMANDS
_STATE = ("plan", "setup", "status", "teardown", "rotate-credentials", "verify")
REQUESTS: tuple[Need, ...] = (
    Need("GET", "/_plugins/_security/authinfo", (), "read who the user is and its roles", ("plan", "setup")),
    Need("GET", "/", ("cluster:monitor/main",), "read the OpenSearch version", _READS, probe=READ),
    Need("GET", "/_cat/plugins", ("cluster:monitor/state", "cluster:monitor/nodes/info"),
         "check that ML Commons and neural-search are installed", _STATE, probe=READ),
    Need("GET", "/_cluster/settings", ("cluster:monitor/state",), "read the connector settings",
         ("plan", "setup", "status", "teardown"), probe=READ),
    Need("PUT", "/_cluster/settings", ("cluster:admin/settings/update",),
         "change the connector settings (an admin step: `os-rerank render --what settings`)", ("setup", "teardown"),
         admin=True),
    Need("POST", "/_plugins/_ml/connectors/_search", (_ml("connectors/search"),), "find the connector by name",
         _STATE, probe=READ),
    Need("POST", "/_plugins/_ml/model_groups/_search", (_ml("model_groups/search"),), "find the model group by name",
         ("plan", "setup", "status", "teardown"), probe=READ),
    Need("POST", "/_plugins/_ml/models/_search", (_ml("models/search"),), "find the model by name", _STATE,
         probe=READ),
    Need("GET", "/_plugins/_ml/connectors/{id}", (_ml("connectors/get"),), "read the connector", _STATE,
         probe=ABSENT),
    Need("GET", "/_plugins/_ml/model_groups/{id}", (_ml("model_groups/get"),), "read the model group",
         ("plan", "setup", "status", "teardown"), probe=ABSENT),
    Need("GET", "/_plugins/_ml/models/{id}", (_ml("models/get"),), "read the model and its state", _STATE,
         probe=ABSENT),
    Need("GET", "/_plugins/_ml/tasks/{id}", (_ml("tasks/get"),), "wait for the model's registration task",
         ("setup",), probe=ABSENT),
    Need("POST", "/_plugins/_ml/connectors/_create", (_ml("create_connector"),), "create the connector", ("setup",)),
    Need("PUT", "/_plugins/_ml/connectors/{id}", (_ml("connectors/update"),), "update the connector",
         ("setup", "rotate-credentials"), probe=ABSENT),
    Need("DELETE", "/_plugins/_ml/connectors/{id}", (_ml("connectors/delete"),), "delete the connector",
         ("teardown",), probe=ABSENT),
    Need("POST", "/_plugins/_ml/model_groups/_register", (_ml("register_model_group"),), "create the model group",
         ("setup",)),
    Need("PUT", "/_plugins/_ml/model_groups/{id}", (_ml("update_model_group"),),
         "update the model group's access (model.access)", ("setup",), probe=ABSENT, with_access=True),
    Need("DELETE", "/_plugins/_ml/model_groups/{id}", (_ml("model_groups/delete"),), "delete the model group",
         ("teardown",), probe=ABSENT),
    Need("POST", "/_plugins/_ml/models/_register", (_ml("register_model"),), "register the model", ("setup",)),
    Need("POST", "/_plugins/_ml/models/{id}/_deploy", (_ml("deploy_model"),), "deploy the model",
         ("setup", "rotate-credentials"), probe=ABSENT),
    Need("POST", "/_plugins/_ml/models/{id}/_undeploy", (_ml("undeploy_models"), _ml("undeploy_model")),
         "undeploy the model", _WRITERS, probe=ABSENT),
    Need("DELETE", "/_plugins/_ml/models/{id}", (_ml("models/delete"),), "delete the model", ("setup", "teardown"),
         probe=ABSENT),
    Need("POST", "/_plugins/_ml/_predict/text_similarity/{id}", (_ml("predict"),),
         "send a predict through the model", ("setup", "verify", "rotate-credentials"), probe=ABSENT),
    # The dense first stage (config `embedding`, dense.py). Its k-NN index `<index>-dense` is not yet one of the
    # index roles above: the printed role does not cover it.
    Need("POST", "/_plugins/_ml/_predict/text_embedding/{id}", (_ml("predict"),),
         "embed texts through the embedding model", ("setup", "verify"), probe=ABSENT, with_embedding=True),
    Need("GET", "/_ingest/pipeline/{name}", ("cluster:admin/ingest/pipeline/get",),
         "read the embedding ingest pipeline", ("plan", "setup", "status"), probe=READ, with_embedding=True),
    Need("PUT", "/_ingest/pipeline/{name}", ("cluster:admin/ingest/pipeline/put",),
         "create the embedding ingest pipeline", ("setup",), probe=INVALID, with_embedding=True),
    Need("DELETE", "/_ingest/pipeline/{name}", ("cluster:admin/ingest/pipeline/delete",),
         "delete the embedding ingest pipeline", ("teardown",), probe=ABSENT, with_embedding=True),
    Need("GET", "/_search/pipeline/{name}", ("cluster:admin/search/pipeline/get",), "read the search pipeline",
         ("plan", "setup", "status"), probe=READ),
    Need("PUT", "/_search/pipeline/{name}", ("cluster:admin/search/pipeline/put",), "create the search pipeline",
         ("setup",), probe=INVALID),
    Need("DELETE", "/_search/pipeline/{name}", ("cluster:admin/search/pipeline/delete",),
         "delete the search pipeline", ("teardown",), probe=ABSENT),
    Need("GET", "/_nodes/search_pipelines", ("cluster:monitor/nodes/info",),
         "check every node offers the windowed pipeline's processors (pipeline.oversample)", ("plan", "setup"),
         probe=READ),
    Need("GET", "/_all/_settings/{name}", ("indices:monitor/settings/get",),
         "find every index whose default search pipeline is ours", ("teardown", "promote", "rollback"),
         (ALL_INDICES,), probe=READ),
    Need("GET", "/{index}/_settings", ("indices:monitor/settings/get",), "read the index's default search pipeline",
         ("status", "promote", "rollback", "teardown"), (TEST_INDEX,), probe=READ),
    Need("GET", "/{index}/_mapping", ("indices:admin/mappings/get",), "read the promotion record in the index's _meta",
         ("status", "promote", "rollback", "teardown"), (TEST_INDEX,), probe=READ),
    Need("PUT", "/{index}/_settings", ("indices:admin/settings/update",),
         "set or restore the index's default search pipeline", ("promote", "rollback", "teardown"), (TEST_INDEX,)),
    Need("PUT", "/{index}/_mapping", ("indices:admin/mapping/put",), "record the promotion in the index's _meta",
         ("promote", "rollback", "teardown"), (TEST_INDEX,)),
    # Search Relevance Workbench (3.1+): action names from the search-relevance plugin's *Action.NAME
    # (src/main/java/org/opensearch/searchrelevance/transport/), not observed here (no 3.x node on this machine).
    Need("GET", "/_plugins/_search_relevance/query_sets", (_SR + "queryset/get",), "list the Workbench query sets",
         ("workbench-export",)),
    Need("PUT", "/_plugins/_search_relevance/query_sets", (_SR + "queryset/put",), "import the query set",
         ("workbench-export",)),
    Need("DELETE", "/_plugins/_search_relevance/query_sets/{id}", (_SR + "queryset/delete",),
         "replace the query set", ("workbench-export",)),
    Need("GET", "/_plugins/_search_relevance/judgments", (_SR + "judgment/get",), "list the Workbench judgments",
         ("workbench-export",)),
    Need("PUT", "/_plugins/_search_relevance/judgments", (_SR + "judgment/create",), "import the judgment list",
         ("workbench-export",)),
    Need("DELETE", "/_plugins/_search_relevance/judgments/{id}", (_SR + "judgment/delete",),
         "replace the judgment list", ("workbench-export",)),
    Need("GET", "/{index}", ("indices:admin/get",), "read the index mapping (and the lock's holder)",
         ("plan", "setup", "status", "teardown", "rotate-credentials", "promote", "rollback"), (TEST_INDEX, LOCK_INDEX),
         probe=READ),
    Need("GET", "/{index}/_count", ("indices:data/read/search",), "count the documents",
         ("plan", "setup", "status", "eval"), (TEST_INDEX, EVAL_INDEX), probe=READ),
    Need("POST", "/{index}/_count", ("indices:data/read/search",), "count the hits of a query",
         ("promote",), (TEST_INDEX,), probe=READ),
    Need("POST", "/{index}/_search", ("indices:data/read/search",), "search the index (through the pipeline)",
         ("plan", "setup", "status", "verify", "search", "eval"), (TEST_INDEX, EVAL_INDEX), probe=READ),
    Need("PUT", "/{index}", ("indices:admin/create",), "create the index (or take the lock)",
         _LOCKED, (TEST_INDEX, EVAL_INDEX, LOCK_INDEX),
         probe=INVALID),
    Need("DELETE", "/{index}", ("indices:admin/delete",), "delete the index (or release the lock)",
         _LOCKED, (TEST_INDEX, EVAL_INDEX, LOCK_INDEX),
         probe=ABSENT),
    Need("POST", "/_bulk", ("indices:data/write/bulk[s]", "indices:data/write/index"), "load the documents",
         ("setup", "eval"), (TEST_INDEX, EVAL_INDEX)),
)


def _pattern(template: str) -> re.Pattern[str]:
    out = re.escape(template)
    for name in ("id", "name"):
        out = out.replace(re.escape("{" + name + "}"), "[^/]+")
    return re.compile(out.replace(re.escape("{index}"), "[^/_][^/]*"))


def find_need(method: str, path: str) -> Need | None:
    """The row of REQUESTS that `method path` is (the first that matches: the specific paths come first)."""
    return next((n for n in REQUESTS if n.matches(method, path)), None)


def index_names(config: Config) -> dict[str, str]:
    """Each index role -> its name (or pattern) for `config`."""
    return {TEST_INDEX: config.index.name, EVAL_INDEX: f"{config.index.name}-eval", LOCK_INDEX: LOCK_PATTERN,
            ALL_INDICES: "*"}


def index_kind(config: Config, name: str) -> str | None:
    """Which of `config`'s indices `name` is."""
    if name.startswith(LOCK_PATTERN.rstrip("*")):
        return LOCK_INDEX
    return next((k for k, v in index_names(config).items() if v == name and k not in (LOCK_INDEX, ALL_INDICES)),
                None)


def applies(need: Need, config: Config) -> bool:
    """Whether an operator running `config` needs `need` (admin steps and unused options are left out)."""
    return (not need.admin and (not need.with_access or config.model.access is not None)
            and (not need.with_embedding or config.embedding is not None))


def role_body(config: Config, commands: Iterable[str] = ALL_COMMANDS) -> dict[str, Any]:
    """The security-plugin role (body of PUT _plugins/_security/api/roles/<name>) that `commands` need."""
    wanted = set(commands)
    cluster: set[str] = set()
    per_index: dict[str, set[str]] = {}
    names = index_names(config)
    for need in REQUESTS:
        if not applies(need, config) or not wanted & set(need.commands):
            continue
        if not need.indices:
            cluster.update(need.actions)
        for kind in need.indices:
            per_index.setdefault(names[kind], set()).update(need.actions)
    everywhere = per_index.get("*", set())  # granted on every index: listing it again per index adds nothing
    per_index = {name: actions if name == "*" else actions - everywhere for name, actions in per_index.items()}
    return {
        "description": f"os-rerank operator for index {config.index.name}, pipeline {config.pipeline.name} "
                       "(os-rerank render --what role)",
        "cluster_permissions": sorted(cluster),
        "index_permissions": [{"index_patterns": [name], "allowed_actions": sorted(actions)}
                              for name, actions in sorted(per_index.items())],
    }


_DENIED = re.compile(r"no permissions for \[(.*?)\] and User \[name=([^,\]]*)")


def denied_actions(reason: str) -> tuple[list[str], str | None]:
    """The actions and user a security-plugin 403 reason names: `no permissions for [a, b] and User [name=x, ...]`."""
    found = _DENIED.search(reason)
    if not found:
        return [], None
    return [a.strip() for a in found.group(1).split(",") if a.strip()], found.group(2)


def explain_denied(method: str, path: str, reason: str) -> str:
    """The fix for a 403 on `method path`: the missing action, what it is for, and the command that prints the role."""
    actions, user = denied_actions(reason)
    need = find_need(method, path)
    target = path.split("?", 1)[0]
    what = ", ".join(actions) if actions else (", ".join(need.actions) if need else "a permission")
    on = ""
    if need is not None and need.indices:
        index = target.strip("/").split("/")[0] if not target.startswith("/_") else None
        on = f" on index {index}" if index else " on the target index"
    step = f" to {need.step}" if need is not None else ""
    who = f"user {user}" if user else "the user"
    return (f"{who} lacks {what}{on}, needed{step}: an admin grants it with the role `os-rerank render --what role "
            f"--config FILE` prints (PUT _plugins/_security/api/roles/{ROLE_NAME}, then map the user to it)")
