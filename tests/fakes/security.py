"""A minimal security plugin for the double: basic auth, roles of cluster and index actions, the real 403 shape.

The action each request needs is this module's own record of what a real 2.19.1 node with the security plugin
answered (observed by running every os-rerank command as a user whose role grew one 403 at a time), not a copy of
os_rerank/provision/permissions.py: where os-rerank's table is wrong, the double disagrees with it, as the node would.
As on the node: a request needing several transport actions is refused naming the first missing one; a 401 has
no body; a bulk answers 200 with a security_exception per document; authinfo names the user and its roles.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .http import Response

_ML = "cluster:admin/opensearch/ml/"
_NAME = r"[^/]+"
# (method, path regex, actions in the order the node checks them, True when they are index actions on group 1)
OBSERVED: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("GET", r"/", ("cluster:monitor/main",), False),
    ("GET", r"/_cat/plugins", ("cluster:monitor/state", "cluster:monitor/nodes/info"), False),
    ("GET", r"/_cluster/settings", ("cluster:monitor/state",), False),
    ("PUT", r"/_cluster/settings", ("cluster:admin/settings/update",), False),
    ("POST", r"/_plugins/_ml/connectors/_search", (_ML + "connectors/search",), False),
    ("POST", r"/_plugins/_ml/model_groups/_search", (_ML + "model_groups/search",), False),
    ("POST", r"/_plugins/_ml/models/_search", (_ML + "models/search",), False),
    ("POST", r"/_plugins/_ml/connectors/_create", (_ML + "create_connector",), False),
    ("POST", r"/_plugins/_ml/model_groups/_register", (_ML + "register_model_group",), False),
    ("POST", r"/_plugins/_ml/models/_register", (_ML + "register_model",), False),
    ("GET", rf"/_plugins/_ml/connectors/{_NAME}", (_ML + "connectors/get",), False),
    ("PUT", rf"/_plugins/_ml/connectors/{_NAME}", (_ML + "connectors/update",), False),
    ("DELETE", rf"/_plugins/_ml/connectors/{_NAME}", (_ML + "connectors/delete",), False),
    ("GET", rf"/_plugins/_ml/model_groups/{_NAME}", (_ML + "model_groups/get",), False),
    ("DELETE", rf"/_plugins/_ml/model_groups/{_NAME}", (_ML + "model_groups/delete",), False),
    ("PUT", rf"/_plugins/_ml/model_groups/{_NAME}", (_ML + "update_model_group",), False),
    ("GET", rf"/_plugins/_ml/models/{_NAME}", (_ML + "models/get",), False),
    ("DELETE", rf"/_plugins/_ml/models/{_NAME}", (_ML + "models/delete",), False),
    ("POST", rf"/_plugins/_ml/models/{_NAME}/_deploy", (_ML + "deploy_model",), False),
    ("POST", rf"/_plugins/_ml/models/{_NAME}/_undeploy", (_ML + "undeploy_models", _ML + "undeploy_model"), False),
    ("GET", rf"/_plugins/_ml/tasks/{_NAME}", (_ML + "tasks/get",), False),
    ("POST", rf"/_plugins/_ml/_predict/{_NAME}/{_NAME}", (_ML + "predict",), False),
    ("GET", rf"/_search/pipeline/{_NAME}", ("cluster:admin/search/pipeline/get",), False),
    ("PUT", rf"/_search/pipeline/{_NAME}", ("cluster:admin/search/pipeline/put",), False),
    ("DELETE", rf"/_search/pipeline/{_NAME}", ("cluster:admin/search/pipeline/delete",), False),
    ("GET", r"/_nodes/search_pipelines", ("cluster:monitor/nodes/info",), False),
    ("GET", r"/(_all)/_settings/[^/]+", ("indices:monitor/settings/get",), True),  # a role needs it on *
    ("GET", r"/([^/_][^/]*)/_settings", ("indices:monitor/settings/get",), True),
    ("PUT", r"/([^/_][^/]*)/_settings", ("indices:admin/settings/update",), True),
    ("GET", r"/([^/_][^/]*)/_mapping", ("indices:admin/mappings/get",), True),
    ("PUT", r"/([^/_][^/]*)/_mapping", ("indices:admin/mapping/put",), True),
    ("GET", r"/([^/_][^/]*)/_count", ("indices:data/read/search",), True),
    ("POST", r"/([^/_][^/]*)/_count", ("indices:data/read/search",), True),
    ("POST", r"/([^/_][^/]*)/_search", ("indices:data/read/search",), True),
    ("GET", r"/([^/_][^/]*)", ("indices:admin/get",), True),
    ("PUT", r"/([^/_][^/]*)", ("indices:admin/create",), True),
    ("DELETE", r"/([^/_][^/]*)", ("indices:admin/delete",), True),
)
BULK_ACTIONS = ("indices:data/write/bulk[s]", "indices:data/write/index")


@dataclass
class SecurityUser:
    password: str
    cluster: list[str] = field(default_factory=list)
    index: list[dict[str, Any]] = field(default_factory=list)  # [{"index_patterns": [...], "allowed_actions": [...]}]
    roles: tuple[str, ...] = ("own_index",)
    all_access: bool = False


class Security:
    """Users and their role; `gate` answers 401/403 before the double's routes see a request."""

    def __init__(self) -> None:
        self.users: dict[str, SecurityUser] = {}

    def add_user(self, name: str, password: str, role: dict[str, Any] | None = None, *,
                 all_access: bool = False) -> None:
        role = role or {}
        roles = ("own_index", "all_access") if all_access else ("own_index", "os_rerank_operator")
        self.users[name] = SecurityUser(password, list(role.get("cluster_permissions") or []),
                                        list(role.get("index_permissions") or []), roles, all_access)

    def _user(self, headers: dict[str, str]) -> tuple[str, SecurityUser] | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        name, _, password = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
        user = self.users.get(name)
        return (name, user) if user is not None and user.password == password else None

    @staticmethod
    def _denied(name: str, actions: tuple[str, ...]) -> dict[str, Any]:
        reason = f"no permissions for [{', '.join(actions)}] and User [name={name}, backend_roles=[], " \
                 "requestedTenant=null]"
        return {"type": "security_exception", "reason": reason}

    def _allows(self, user: SecurityUser, action: str, index: str | None) -> bool:
        if user.all_access:
            return True
        if index is None:
            return action in user.cluster
        return any(action in e.get("allowed_actions", []) and any(fnmatch.fnmatchcase(index, p)
                                                                   for p in e.get("index_patterns", []))
                   for e in user.index)

    def gate(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response | None:
        found = self._user({k.lower(): v for k, v in headers.items()})
        if found is None:
            return Response(401, "", {"www-authenticate": 'Basic realm="OpenSearch Security"'})
        name, user = found
        if path == "/_plugins/_security/authinfo":
            return Response(200, {"user": f"User [name={name}, backend_roles=[], requestedTenant=null]",
                                  "user_name": name, "user_requested_tenant": None, "backend_roles": [],
                                  "custom_attribute_names": [], "roles": list(user.roles), "tenants": {name: True},
                                  "principal": None})
        if path == "/_bulk":
            return self._bulk(name, user, body)
        for verb, pattern, actions, on_index in OBSERVED:
            match = re.fullmatch(pattern, path)
            if verb != method or match is None:
                continue
            index = match.group(1) if on_index else None
            for action in actions:
                if not self._allows(user, action, index):
                    error = self._denied(name, (action,))
                    return Response(403, {"error": {"root_cause": [error], **error}, "status": 403})
            return None
        return None

    def _bulk(self, name: str, user: SecurityUser, body: bytes) -> Response | None:
        items = []
        lines = [line for line in body.decode("utf-8").split("\n") if line.strip()]
        for line in lines[::2]:
            meta = next(iter(json.loads(line).values()))
            index = str(meta.get("_index"))
            if not all(self._allows(user, a, index) for a in BULK_ACTIONS):
                items.append({"index": {"_index": index, "_id": meta.get("_id"), "status": 403,
                                        "error": self._denied(name, BULK_ACTIONS)}})
        if not items:
            return None
        return Response(200, {"took": 0, "errors": True, "items": items})
