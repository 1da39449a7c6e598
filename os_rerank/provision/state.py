"""What the cluster holds now, for the resources os-rerank manages. GETs only (and read-only `_search` POSTs).

Resources are found by name, never by a remembered id: a second machine, or a setup that died half-way, finds the
same things. More than one resource with our name is reported as such (plan refuses to pick one). ML Commons
resources are searched for, then read by id (mlcommons.find_by_name), since its searches lag its writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..mlcommons import (
    CONNECTOR_ACCESS_CONTROL,
    CONNECTORS,
    MODEL_ACCESS_CONTROL,
    MODEL_GROUPS,
    MODELS,
    PRIVATE_IP,
    PRIVATE_IP_SINCE,
    TRUSTED_REGEX,
    Found,
    find_by_name,
)
from .preflight import ClusterInfo
from .render import Version


@dataclass(frozen=True)
class IndexState:
    """The test index: its field mappings, document count and documents by id."""

    properties: dict[str, Any]
    count: int
    documents: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ClusterState:
    """Everything plan compares against: settings and each managed resource (several when names collide)."""

    version: Version
    trusted_regexes: tuple[str, ...]
    trusted_regexes_set: bool  # False: the list is the built-in default
    private_ip_enabled: bool | None  # None: the setting does not exist on this version
    connectors: tuple[Found, ...] = ()
    model_groups: tuple[Found, ...] = ()
    models: tuple[Found, ...] = ()
    index: IndexState | None = None
    pipeline: dict[str, Any] | None = None
    plugins: frozenset[str] = field(default_factory=frozenset)
    # Where a changed setting must go to take effect: transient settings shadow persistent ones.
    settings_scope: str = "persistent"
    model_access_control: bool = False
    connector_access_control: bool = False


def read_state(cluster: Cluster, config: Config, info: ClusterInfo) -> ClusterState:
    """The cluster's current state for `config`'s resources."""
    regexes, regexes_set, private_ip, scope = read_settings(cluster, info.version)
    access_control = _setting_on(cluster, MODEL_ACCESS_CONTROL) if config.model.access is not None else False
    connector_control = (_setting_on(cluster, CONNECTOR_ACCESS_CONTROL) if config.connector.access is not None
                         else False)
    # Found by a search, each read again by id: see mlcommons.py on why a search alone is not trusted.
    connectors = find_by_name(cluster, CONNECTORS, config.connector.name)
    groups = find_by_name(cluster, MODEL_GROUPS, config.model.group) if config.model.group else ()
    models = find_by_name(cluster, MODELS, config.model.name)
    return ClusterState(
        version=info.version,
        trusted_regexes=regexes,
        trusted_regexes_set=regexes_set,
        private_ip_enabled=private_ip,
        connectors=connectors,
        model_groups=groups,
        models=models,
        index=read_index(cluster, config.index.name),
        pipeline=read_pipeline(cluster, config.pipeline.name),
        plugins=info.plugins,
        settings_scope=scope,
        model_access_control=access_control,
        connector_access_control=connector_control,
    )


def _setting_on(cluster: Cluster, name: str) -> bool:
    """Whether boolean setting `name` is true (transient, then persistent, then the default, else false)."""
    data = cluster.request("GET", "/_cluster/settings", params={"include_defaults": "true", "flat_settings": "true"})
    for scope in ("transient", "persistent", "defaults"):
        value = _setting((data or {}).get(scope) or {}, name)
        if value is not None:
            return str(value).lower() == "true"
    return False


def read_settings(cluster: Cluster, version: Version) -> tuple[tuple[str, ...], bool, bool | None, str]:
    """(trusted endpoint regexes in force, whether set explicitly, private_ip_enabled or None, scope to write)."""
    data = cluster.request("GET", "/_cluster/settings", params={"include_defaults": "true", "flat_settings": "true"})
    data = data or {}
    regexes: list[str] | None = None
    explicit = False
    for scope in ("transient", "persistent", "defaults"):  # transient wins over persistent, both over defaults
        value = _setting(data.get(scope) or {}, TRUSTED_REGEX)
        if value is not None:
            regexes = _as_list(value)
            explicit = scope != "defaults"
            break
    private: bool | None = None
    for scope in ("transient", "persistent", "defaults"):
        value = _setting(data.get(scope) or {}, PRIVATE_IP)
        if value is not None:
            private = str(value).lower() == "true"
            break
    if private is None and version >= PRIVATE_IP_SINCE:
        private = False
    transient = data.get("transient") or {}
    shadowed = any(_setting(transient, key) is not None for key in (TRUSTED_REGEX, PRIVATE_IP))
    return tuple(regexes or ()), explicit, private, "transient" if shadowed else "persistent"


def _setting(scope: dict[str, Any], key: str) -> Any:
    """A setting from flat (`a.b.c`) or nested settings; list settings may come flat as `key.0`, `key.1`."""
    if key in scope:
        return scope[key]
    indexed = sorted((k for k in scope if k.startswith(key + ".") and k[len(key) + 1:].isdigit()),
                     key=lambda k: int(k[len(key) + 1:]))
    if indexed:
        return [scope[k] for k in indexed]
    node: Any = scope
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                return [value]
            if isinstance(parsed, list):
                return [str(v) for v in parsed]
        return [value] if text else []
    return [str(value)]


def read_index(cluster: Cluster, name: str) -> IndexState | None:
    """The index's mapping and documents, or None when there is no such index."""
    info = cluster.request("GET", f"/{name}", missing_ok=True)
    if not info:
        return None
    entry: dict[str, Any] = info.get(name) or next(iter(info.values()), {})
    properties = ((entry.get("mappings") or {}).get("properties")) or {}
    count = count_documents(cluster, name) or 0
    size = max(0, min(int(count), 10000))
    docs: dict[str, dict[str, Any]] = {}
    if size:
        # `_none`: a promoted index's default pipeline would rerank this read, and fail without a rerank context.
        result = cluster.request("POST", f"/{name}/_search", body={"query": {"match_all": {}}, "size": size},
                                 params={"search_pipeline": "_none"})
        for hit in ((result or {}).get("hits") or {}).get("hits") or []:
            docs[str(hit.get("_id"))] = dict(hit.get("_source") or {})
    return IndexState(dict(properties), int(count), docs)


def count_documents(cluster: Cluster, name: str) -> int | None:
    """The index's document count, or None when there is no such index.

    A size-0 search naming pipeline `_none`, not `_count`: on 2.19.1 `_count` runs through the index's default
    search pipeline, which on a promoted index (promote.py) is the rerank processor, failing without a rerank
    context; and `_count` refuses a `search_pipeline` parameter.
    """
    body = {"size": 0, "track_total_hits": True, "query": {"match_all": {}}}
    result = cluster.request("POST", f"/{name}/_search", body=body, params={"search_pipeline": "_none"},
                             missing_ok=True)
    if result is None:
        return None
    total = ((result.get("hits") or {}).get("total") or {})
    return int(total.get("value", 0) if isinstance(total, dict) else total)


def read_pipeline(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The search pipeline's body, or None when it does not exist."""
    result = cluster.request("GET", f"/_search/pipeline/{name}", missing_ok=True)
    if not result:
        return None
    body = result.get(name)
    return dict(body) if isinstance(body, dict) else None
