"""The `os-rerank local` commands on a node: build and start it (`up`), report on it (`status`), stop or remove it
(`down`). Running the process itself (start, health, pid, stop) is process.py's.

`up` and `down` are the commands as library calls: they never print, progress goes through a callback.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LocalNodeError
from ..events import note
from . import distribution as dist
from .build import Wanted, build_node, reconfigure
from .host import RunAs, check_reachable, find_java, node_user
from .layout import (
    ADMIN_USER,
    NodeInfo,
    Progress,
    check_name,
    check_port,
    default_cache,
    default_home,
    default_name,
    list_nodes,
    load_node,
    locked,
    quiet,
)
from .maven import Cache
from .maven_repository import choose_repository
from .process import (
    START_TIMEOUT_SECONDS,
    health,
    last_lines,
    node_pid,
    port_user,
    rss_bytes,
    start_node,
    stop_node,
)

DEFAULT_PORT = 9200
DEFAULT_SECURE_PORT = 9201
DEFAULT_HEAP = "1g"


# --- the commands, as library calls -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    node: NodeInfo
    outcome: str  # "built and started", "started", "already running"
    seconds: float  # in all, downloads and build included
    start_seconds: float | None  # from launching the node to healthy
    pid: int | None

    def to_json(self) -> dict[str, Any]:
        node = self.node
        return {"name": node.name, "outcome": self.outcome, "url": node.url, "version": node.version,
                "secure": node.secure, "pid": self.pid, "seconds": round(self.seconds, 1),
                "start_seconds": None if self.start_seconds is None else round(self.start_seconds, 1),
                "ca_certs": str(node.ca_certs) if node.ca_certs else None,
                "username": ADMIN_USER if node.secure else None,
                "password_file": str(node.password_file) if node.password_file else None,
                "folder": node.folder}


@dataclass(frozen=True)
class Ask:
    """What `local up` was asked for; None leaves an existing node's value, else takes the default."""

    name: str
    version: str = dist.DEFAULT_VERSION
    port: int | None = None
    secure: bool | None = None
    heap: str | None = None


def up(ask: Ask, *, home: Path, cache_root: Path, environ: Mapping[str, str], repository: str | None = None,
       fresh: bool = False, timeout: float = START_TIMEOUT_SECONDS, progress: Progress = quiet,
       run_as: RunAs | None = None) -> UpResult:
    """Build the node when needed, start it when stopped, and wait until it is healthy.

    `run_as` defaults to `node_user()`: the caller, or the system user os-rerank when the caller is root.
    """
    check_name(ask.name)
    dist.parse_version(ask.version)
    if ask.port is not None:
        check_port(ask.port)
    if ask.heap is not None:
        dist.check_heap(ask.heap)
    if not home.exists():
        home.mkdir(parents=True)
        if os.geteuid() == 0:
            os.chmod(home, 0o755)  # a folder we made; the node's user (os-rerank) must be able to enter it
    with locked(home / f".{ask.name}.lock"):
        return _up(ask, home, cache_root, environ, repository, fresh, timeout, progress, run_as)


def _up(ask: Ask, home: Path, cache_root: Path, environ: Mapping[str, str], repository: str | None, fresh: bool,
        timeout: float, progress: Progress, run_as: RunAs | None) -> UpResult:
    started = time.monotonic()
    version = dist.parse_version(ask.version)
    node = load_node(home, ask.name)
    if node is None and (home / ask.name).exists():
        raise LocalNodeError(f"{home / ask.name} exists but holds no node (no node.json)",
                             fix="remove that folder, or pass another --name")
    if node is not None and fresh:
        stop_node(node)
        progress(note(f"removing node {node.name} ({node.folder}) to build it afresh"))
        remove_node(node)
        node = None
    secure = ask.secure if ask.secure is not None else (node.secure if node else False)
    wanted = Wanted(ask.name, ask.version, check_port(ask.port or (node.port if node else default_port(secure))),
                    secure, dist.check_heap(ask.heap or (node.heap if node else DEFAULT_HEAP)))
    if node is not None and (node.version, node.secure) != (wanted.version, wanted.secure):
        kind = lambda v, s: f"{v}{' secured' if s else ''}"  # noqa: E731
        raise LocalNodeError(f"node {node.name} is OpenSearch {kind(node.version, node.secure)}, not "
                             f"{kind(wanted.version, wanted.secure)}",
                             fix="pass --fresh to rebuild it (its data is lost), or --name for a second node")
    if node is not None:
        pid = node_pid(node)
        if pid is not None:
            if node.port != wanted.port:
                raise LocalNodeError(f"node {node.name} is running on port {node.port}, not {wanted.port}",
                                     fix="`os-rerank local down` first to move it")
            return UpResult(node, "already running", time.monotonic() - started, None, pid)
        node = reconfigure(node, wanted.port, wanted.heap)
        outcome = "started"
    else:
        taken = port_user(wanted.port)  # before minutes of downloading
        if taken:
            raise LocalNodeError(f"port {wanted.port} is taken ({taken})",
                                 fix="stop what listens there, or pass --port with a free one")
        java = find_java(version, environ)
        run_as = run_as or node_user(create=True)
        check_reachable(home / wanted.name, run_as)
        repo = choose_repository(repository, environ)
        progress(note(f"artifacts from {repo.shown} ({repo.source}); cache {cache_root}"))
        node = build_node(wanted, home, Cache(cache_root, repo, progress), java, run_as, progress)
        outcome = "built and started"
    seconds = start_node(node, run_as or node_user(create=False), timeout=timeout, progress=progress)
    return UpResult(node, outcome, time.monotonic() - started, seconds, node_pid(node))


def default_port(secure: bool) -> int:
    return DEFAULT_SECURE_PORT if secure else DEFAULT_PORT


def remove_node(node: NodeInfo) -> None:
    try:
        shutil.rmtree(node.path)
    except OSError as exc:
        raise LocalNodeError(f"cannot remove {node.folder}: {exc.strerror} ({exc.filename})",
                             fix="run as the user that built it (or root)") from None


@dataclass(frozen=True)
class NodeStatus:
    node: NodeInfo
    pid: int | None
    health: str | None
    rss: int | None

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return f"running ({self.health or 'not answering'})"

    def to_json(self) -> dict[str, Any]:
        node = self.node
        return {"name": node.name, "version": node.version, "url": node.url, "secure": node.secure,
                "state": "stopped" if self.pid is None else "running", "health": self.health, "pid": self.pid,
                "rss_bytes": self.rss, "heap": node.heap, "java": f"{node.java_version} ({node.java_home})",
                "ca_certs": str(node.ca_certs) if node.ca_certs else None,
                "password_file": str(node.password_file) if node.password_file else None,
                "folder": node.folder}


def status(node: NodeInfo) -> NodeStatus:
    pid = node_pid(node)
    if pid is None:
        return NodeStatus(node, None, None, None)
    return NodeStatus(node, pid, health(node), rss_bytes(pid))


def select(home: Path, name: str | None, *, one: bool = False) -> list[NodeInfo]:
    """The node called `name`, or every node; LocalNodeError when there is none (or several and `one`)."""
    if name is not None:
        node = load_node(home, name)
        if node is None:
            raise LocalNodeError(f"no local node named {name!r} in {home}", fix="`os-rerank local up` builds one")
        return [node]
    nodes = list_nodes(home)
    if not nodes:
        raise LocalNodeError(f"no local node in {home}", fix="`os-rerank local up` builds one")
    if one and len(nodes) > 1:
        raise LocalNodeError(f"{len(nodes)} local nodes ({', '.join(n.name for n in nodes)}): say which",
                             fix="pass --name NAME")
    return nodes


def down(node: NodeInfo, *, purge: bool = False) -> str:
    with locked(node.path.parent / f".{node.name}.lock"):
        stopped = stop_node(node)
        if purge:
            remove_node(node)
            return "stopped and removed" if stopped else "removed"
    return "stopped" if stopped else "was not running"


__all__ = ["ADMIN_USER", "DEFAULT_PORT", "DEFAULT_SECURE_PORT", "Ask", "NodeInfo", "NodeStatus", "UpResult", "Wanted",
           "default_cache", "default_home", "default_name", "down", "last_lines", "select", "status", "up"]
