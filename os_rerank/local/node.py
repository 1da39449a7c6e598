"""Run a built node: start it as its user and wait until healthy, find it by pid, stop it, report on it.

`up` and `down` are the commands as library calls: they never print, progress goes through a callback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LocalNodeError
from . import distribution as dist
from .build import Wanted, build_node, java_env, reconfigure
from .host import RunAs, check_reachable, find_java, node_user
from .layout import ADMIN_USER, NodeInfo, default_cache, default_home, default_name, list_nodes, load_node
from .maven import Cache, choose_repository

DEFAULT_PORT = 9200
DEFAULT_SECURE_PORT = 9201
DEFAULT_HEAP = "1g"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass

# --- running it ------------------------------------------------------------------------------------------------------


def node_pid(node: NodeInfo) -> int | None:
    """The running node's pid: from its pid file, checked against the process's command line; else None."""
    candidates = []
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int(node.pid_file.read_text(encoding="ascii").strip()))
    candidates += _pids_of(node.distribution)
    for pid in candidates:
        if _is_node_process(pid, node.distribution):
            return pid
    return None


def _pids_of(distribution: Path) -> list[int]:
    """Processes whose command line names this distribution (when the pid file is not written yet)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    out = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and _is_node_process(int(entry.name), distribution):
            out.append(int(entry.name))
    return out


def _is_node_process(pid: int, distribution: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return _alive(pid)  # no /proc (macOS): trust the pid file
    return f"-Dopensearch.path.home={distribution}".encode() in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rss_bytes(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else None


def port_user(port: int) -> str | None:
    """None when 127.0.0.1:`port` is free to listen on, else why not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def health(node: NodeInfo, timeout: float = 5.0) -> str | None:
    """The cluster's health colour, or None when the node does not answer it (yet)."""
    request = urllib.request.Request(f"{node.url}/_cluster/health")
    context = None
    if node.secure:
        assert node.ca_certs is not None
        context = ssl.create_default_context(cafile=str(node.ca_certs))
        token = base64.b64encode(f"{ADMIN_USER}:{node.password()}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
            return str(json.loads(reply.read()).get("status"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def last_lines(node: NodeInfo, count: int = 20) -> list[str]:
    """The last `count` lines of the node's log (or of what it printed before its log existed)."""
    for path in (node.log_file, node.path / "logs" / "stdout.log"):
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 256 * 1024))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        if lines:
            return lines[-count:]
    return []


def start_node(node: NodeInfo, run_as: RunAs, *, timeout: float = START_TIMEOUT_SECONDS,
               progress: Progress = _quiet, clock: Callable[[], float] = time.monotonic) -> float:
    """Start the node and wait until it is green or yellow; returns the seconds it took.

    The node is stopped again when it does not come up, or when waiting is interrupted: a failed `up` leaves
    nothing running.
    """
    taken = port_user(node.port)
    if taken:
        raise LocalNodeError(f"port {node.port} is taken ({taken})",
                             fix="stop what listens there, or pass --port with a free one")
    node.pid_file.unlink(missing_ok=True)
    started = clock()
    stdout = (node.path / "logs" / "stdout.log").open("ab")
    try:
        launcher = subprocess.Popen(
            [str(node.distribution / "bin" / "opensearch"), "-d", "-p", str(node.pid_file)],
            cwd=node.distribution, env=java_env(Path(node.java_home)), stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
            user=run_as.uid, group=run_as.gid, extra_groups=[] if run_as.uid is not None else None)
        code = launcher.wait(timeout=120)
    finally:
        stdout.close()
    try:
        if code != 0:
            raise LocalNodeError(f"node {node.name} did not start (its launcher exited {code})",
                                 fix="see `os-rerank local logs`")
        progress(f"waiting for node {node.name} on {node.url}")
        announced = started
        while True:
            if clock() - started > 3 and node_pid(node) is None:
                raise _died(node)
            state = health(node, timeout=2.0)
            if state in ("green", "yellow"):
                return clock() - started
            if clock() - started > timeout:
                raise LocalNodeError(f"node {node.name} did not become healthy within {timeout:g}s "
                                     f"(last health: {state or 'no answer'}); stopped it",
                                     fix="raise --timeout, or see `os-rerank local logs`")
            if clock() - announced >= 10:
                announced = clock()
                progress(f"still waiting for node {node.name} ({clock() - started:.0f}s, health: "
                         f"{state or 'no answer yet'})")
            time.sleep(0.5)
    except BaseException:
        stop_node(node, timeout=30.0)
        raise


def _died(node: NodeInfo) -> LocalNodeError:
    lines = [line for line in last_lines(node, 40) if line.strip()]
    errors = [line for line in lines if re.search(r"\b(ERROR|FATAL|Exception)\b", line)] or lines
    shown = " | ".join(line.strip()[:300] for line in errors[-5:]) or "(no log)"
    return LocalNodeError(f"node {node.name} stopped while starting; its log ends: {shown}",
                          fix="see `os-rerank local logs` for the whole log")


def stop_node(node: NodeInfo, *, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the node by its pid (SIGTERM, then SIGKILL after `timeout`); False when it was not running."""
    pid = node_pid(node)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise LocalNodeError(f"not allowed to stop node {node.name} (pid {pid})",
                             fix="run as the user that started it (or root)") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_node_process(pid, node.distribution):
            node.pid_file.unlink(missing_ok=True)
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    node.pid_file.unlink(missing_ok=True)
    return True


# --- the commands, as library calls -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    node: NodeInfo
    outcome: str  # "built and started", "started", "already running"
    seconds: float
    pid: int | None

    def to_json(self) -> dict[str, Any]:
        node = self.node
        return {"name": node.name, "outcome": self.outcome, "url": node.url, "version": node.version,
                "secure": node.secure, "pid": self.pid, "seconds": round(self.seconds, 1),
                "ca_certs": str(node.ca_certs) if node.ca_certs else None,
                "username": ADMIN_USER if node.secure else None,
                "password_file": str(node.password_file) if node.password_file else None,
                "folder": node.folder}


def up(wanted: Wanted, *, home: Path, cache_root: Path, environ: Mapping[str, str], repository: str | None = None,
       fresh: bool = False, timeout: float = START_TIMEOUT_SECONDS, progress: Progress = _quiet,
       run_as: RunAs | None = None) -> UpResult:
    """Build the node when needed, start it when stopped, and wait until it is healthy.

    `run_as` defaults to `node_user()`: the caller, or the system user os-rerank when the caller is root.
    """
    started = time.monotonic()
    version = dist.parse_version(wanted.version)
    dist.check_heap(wanted.heap)
    node = load_node(home, wanted.name)
    if node is not None and fresh:
        stop_node(node)
        progress(f"removing node {node.name} ({node.folder}) to build it afresh")
        shutil.rmtree(node.path)
        node = None
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
            return UpResult(node, "already running", time.monotonic() - started, pid)
        node = reconfigure(node, wanted.port, wanted.heap)
        outcome = "started"
    else:
        taken = port_user(wanted.port)  # before minutes of downloading
        if taken:
            raise LocalNodeError(f"port {wanted.port} is taken ({taken})",
                                 fix="stop what listens there, or pass --port with a free one")
        java = find_java(version, environ)
        run_as = run_as or node_user(create=True)
        home.mkdir(parents=True, exist_ok=True)
        if run_as.uid is not None:
            os.chmod(home, 0o755)
        check_reachable(home / wanted.name, run_as)
        repo = choose_repository(repository, environ)
        progress(f"artifacts from {repo.shown} ({repo.source}); cache {cache_root}")
        node = build_node(wanted, home, Cache(cache_root, repo, progress), java, run_as, progress)
        outcome = "built and started"
    start_node(node, run_as or node_user(create=False), timeout=timeout, progress=progress)
    return UpResult(node, outcome, time.monotonic() - started, node_pid(node))


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
    stopped = stop_node(node)
    if purge:
        shutil.rmtree(node.path, ignore_errors=True)
        return "stopped and removed" if stopped else "removed"
    return "stopped" if stopped else "was not running"


__all__ = ["ADMIN_USER", "DEFAULT_PORT", "DEFAULT_SECURE_PORT", "NodeInfo", "NodeStatus", "UpResult", "Wanted",
           "default_cache", "default_home", "default_name", "down", "last_lines", "select", "status", "up"]
