"""Preflight: which OpenSearch this is, whether it can rerank at all, and where the endpoint's host lives.

Reads only (`GET /`, `GET /_cat/plugins`), plus best-effort name resolution of the connector URL's host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..cluster import Cluster
from ..errors import ClusterError
from .render import MIN_VERSION, Version, format_version, parse_version

REQUIRED_PLUGINS = ("opensearch-ml", "opensearch-neural-search")


@dataclass(frozen=True)
class ClusterInfo:
    """What `GET /` and `_cat/plugins` say: the version, the distribution and the plugin components."""

    version: Version
    distribution: str
    plugins: frozenset[str]

    @property
    def version_text(self) -> str:
        return format_version(self.version)


def read_cluster_info(cluster: Cluster) -> ClusterInfo:
    """The cluster's version and plugins (two GETs)."""
    root = cluster.request("GET", "/") or {}
    number = str((root.get("version") or {}).get("number", "0.0.0"))
    distribution = str((root.get("version") or {}).get("distribution", "opensearch"))
    rows = cluster.request("GET", "/_cat/plugins", params={"format": "json"}) or []
    plugins = frozenset(str(r.get("component", "")) for r in rows if isinstance(r, dict))
    return ClusterInfo(parse_version(number), distribution, plugins)


def check_cluster(info: ClusterInfo) -> None:
    """Nothing if os-rerank can provision this cluster; ClusterError with the reason otherwise."""
    if info.version < MIN_VERSION:
        raise ClusterError(
            f"OpenSearch {info.version_text} cannot rerank with a remote model: ML Commons runs remote "
            f"text_similarity models and neural-search has the rerank processor only from 2.12",
            fix="upgrade the cluster to OpenSearch 2.12 or newer",
        )
    missing = [p for p in REQUIRED_PLUGINS if p not in info.plugins]
    if missing:
        raise ClusterError(
            f"the cluster lacks the plugin(s) {', '.join(missing)} "
            f"(found: {', '.join(sorted(info.plugins)) or 'none'})",
            fix="use an OpenSearch distribution that bundles ML Commons and neural-search (the default docker image "
            "does), or install them on every node",
        )


def preflight(cluster: Cluster) -> ClusterInfo:
    """The cluster's info, once it passed `check_cluster`."""
    info = read_cluster_info(cluster)
    check_cluster(info)
    return info


Resolver = Callable[..., list[Any]]


def is_private_host(url: str, resolve: Resolver = socket.getaddrinfo) -> bool:
    """True when the URL's host may be loopback, private or link-local from OpenSearch's side of the network.

    Literal IPs and `localhost` are decided without the network, and AWS service hosts are public. A name without
    a dot (`endpoint`, a docker compose or Kubernetes service) or one that does not resolve from here is taken as
    private: OpenSearch resolves it on a network we cannot see, and there it is almost always private. Other
    names are resolved here, best-effort. Being wrong towards "private" only allows private IPs for connectors
    (ML Commons' `private_ip_enabled`); being wrong towards "public" makes every predict fail on 3.4+.
    """
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return _private(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return False
    if "." not in host:
        return True
    try:
        infos = resolve(host, None)
    except (OSError, UnicodeError):
        return True
    for info in infos:
        try:
            if _private(ipaddress.ip_address(info[4][0])):
                return True
        except (ValueError, IndexError, TypeError):
            continue
    return False


def _private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or site_local
