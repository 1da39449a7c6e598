"""What the current user may do, checked before anything is written: every missing permission at once.

OpenSearch 2.19.1's security plugin tells a user who they are (`GET _plugins/_security/authinfo`: name, backend
roles, the security roles mapped to them; security/src/main/java/org/opensearch/security/rest/
SecurityInfoAction.java) but not what those roles allow: `_plugins/_security/api/permissionsinfo` only says whether
the user may call the security REST API, the role definitions are readable by admins only, and there is no
has-privileges API in 2.x. So each permission of permissions.REQUESTS is probed with a request that changes
nothing (permissions.READ / ABSENT / INVALID): the security plugin evaluates the action before the action runs, so
the probe answers 403 when the permission is missing, and 404 or 400 when it is there. The probes are bookkeeping
(not counted as writes). What cannot be probed without creating something (a connector, a model group, a model,
the bulk load) is listed as unchecked; a 403 there still names the action (cluster.py).

A cluster without the security plugin (no authinfo) is not probed at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError
from . import permissions as perm

PROBE_ID = "os-rerank-permission-probe"  # an ML Commons id / pipeline name / index suffix that never exists
AUTHINFO = "/_plugins/_security/authinfo"


@dataclass(frozen=True)
class Missing:
    """A permission the user lacks: the actions the cluster named, on what, for which step and commands."""

    actions: tuple[str, ...]
    on: str  # "cluster" or "index <name>"
    need: perm.Need

    def line(self) -> str:
        return f"{', '.join(self.actions)} ({self.on}): to {self.need.step} ({', '.join(self.need.commands)})"


@dataclass
class Access:
    """Who the user is and what the probes found; `secured` False when the cluster has no security plugin."""

    secured: bool
    user: str | None = None
    backend_roles: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    missing: list[Missing] = field(default_factory=list)
    unchecked: list[perm.Need] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"secured": self.secured, "user": self.user, "backend_roles": list(self.backend_roles),
                "roles": list(self.roles), "missing": [m.line() for m in self.missing],
                "unchecked": [f"{', '.join(n.actions)}: to {n.step}" for n in self.unchecked]}


def _probe(need: perm.Need, config: Config, index: str | None) -> tuple[str, str, Any] | None:
    """(method, path, body) that checks `need` without changing anything, or None when there is no such request."""
    path = need.path.replace("{id}", PROBE_ID).replace("{name}", PROBE_ID)
    if need.probe == perm.READ:
        if "{index}" in need.path:
            path = path.replace("{index}", index or "")
        if need.method == "POST" and path.endswith("/_search"):
            body: Any = ({"query": ml.name_query(PROBE_ID), "size": 0} if path.startswith(ml.BASE)
                         else {"query": {"match_all": {}}, "size": 0})
            return need.method, path, body
        return need.method, path, None
    if need.probe == perm.ABSENT:
        if "{index}" in need.path:
            path = path.replace("{index}", index or "")
        body = {"description": PROBE_ID} if need.method == "PUT" else None
        if "/_predict/" in path:
            body = {"query_text": PROBE_ID, "text_docs": [PROBE_ID]}
        return need.method, path, body
    if need.probe == perm.INVALID:
        if "{index}" in need.path:  # OpenSearch refuses 0 shards after the permission check: nothing is created
            return need.method, path.replace("{index}", index or ""), {
                "settings": {"index": {"number_of_shards": 0}}}
        return need.method, path, {"response_processors": [{"os-rerank-no-such-processor": {}}]}
    return None


def check_access(cluster: Cluster, config: Config, commands: Iterable[str]) -> Access:
    """Who the user is and which permissions `commands` need that the user lacks (probes; nothing is written)."""
    try:
        info = cluster.request("GET", AUTHINFO, bookkeeping=True) or {}
    except ClusterError as exc:
        if exc.status in (400, 404):  # no security plugin: no handler for the path
            return Access(secured=False)
        raise
    access = Access(True, str(info.get("user_name") or "") or None, tuple(info.get("backend_roles") or ()),
                    tuple(info.get("roles") or ()))
    wanted = set(commands)
    names = perm.index_names(config)
    absent_indices: set[str] = set()
    for need in perm.REQUESTS:
        if not perm.applies(need, config) or not need.actions or not wanted & set(need.commands):
            continue
        targets: list[str | None] = [None]
        if need.indices:
            targets = [_probe_index(names[k], k, need, absent_indices) for k in need.indices]
        for index in targets:
            if need.indices and index is None:
                access.unchecked.append(need)
                continue
            probe = _probe(need, config, index)
            if probe is None:
                access.unchecked.append(need)
                continue
            method, path, body = probe
            try:
                result = cluster.request(method, path, body=body, missing_ok=True, bookkeeping=True)
            except ClusterError as exc:
                if exc.status == 403:
                    actions, _ = perm.denied_actions(exc.message)
                    shown = perm.LOCK_PATTERN if index and perm.index_kind(config, index) == perm.LOCK_INDEX else index
                    on = f"index {shown}" if shown else "cluster"
                    access.missing.append(Missing(tuple(actions) or need.actions, on, need))
                elif exc.status not in (400, 404) and "index_not_found_exception" not in exc.message:
                    # On a fresh 2.19.1 cluster ML Commons answers a deploy of a missing model with 500 "no such
                    # index [.plugins-ml-model]": the system index is made by the first register. The security
                    # plugin had let the request through by then, so the permission is there.
                    raise
                continue
            if need.probe == perm.READ and index is not None and result is None:
                absent_indices.add(index)  # a read of it answered 404: deleting it is a harmless probe
    return access


def _probe_index(name: str, kind: str, need: perm.Need, absent: set[str]) -> str | None:
    """The index name to probe `need` on, or None when no probe is harmless there."""
    if kind == perm.LOCK_INDEX:  # the role grants a pattern: an absent name inside it answers for every lock
        return perm.LOCK_PATTERN.replace("*", PROBE_ID)
    if need.probe == perm.ABSENT and need.method == "DELETE":
        return name if name in absent else None  # deleting an index that exists is not a probe
    return name


def require_access(cluster: Cluster, config: Config, commands: Iterable[str]) -> Access:
    """`check_access`, raising one ClusterError (403) that lists every missing permission."""
    access = check_access(cluster, config, commands)
    if access.missing:
        who = access.user or "the user"
        roles = f" (roles: {', '.join(access.roles) or 'none'}; backend roles: " \
                f"{', '.join(access.backend_roles) or 'none'})"
        lines = [f"{who}{roles} lacks {len(access.missing)} permission(s) os-rerank needs; nothing was written:"]
        lines += [f"  {m.line()}" for m in access.missing]
        raise ClusterError("\n".join(lines), status=403, fix=(
            f"an admin creates the role `os-rerank render --what role --config {config.source.name}` prints "
            f"(PUT _plugins/_security/api/roles/{perm.ROLE_NAME}) and maps {who} to it "
            f"(PUT _plugins/_security/api/rolesmapping/{perm.ROLE_NAME})"))
    return access
