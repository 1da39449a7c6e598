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
from ..events import note
from . import distribution as dist
from .build import Wanted, build_node, java_env, reconfigure
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
    open_no_follow,
    quiet,
)
from .maven import Cache
from .maven_repository import choose_repository

DEFAULT_PORT = 9200
DEFAULT_SECURE_PORT = 9201
DEFAULT_HEAP = "1g"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0


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
    try:
        context = None
        if node.secure:
            assert node.ca_certs is not None
            context = ssl.create_default_context(cafile=str(node.ca_certs))
            token = base64.b64encode(f"{ADMIN_USER}:{node.password()}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
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
               progress: Progress = quiet, clock: Callable[[], float] = time.monotonic) -> float:
    """Start the node and wait until it is green or yellow; returns the seconds it took.

    The node is stopped again when it does not come up, or when waiting is interrupted: a failed `up` leaves
    nothing running.
    """
    taken = port_user(node.port)
    if taken:
        raise LocalNodeError(f"port {node.port} is taken ({taken})",
                             fix="stop what listens there, or pass --port with a free one")
    if shutil.which("ps") is None:
        raise LocalNodeError("OpenSearch's launcher needs `ps`, which is not installed",
                             fix="install it (Debian: apt-get install procps)")
    if node.ca_certs is not None and not node.ca_certs.is_file():
        raise LocalNodeError(f"{node.ca_certs} is missing: the node's certificate cannot be checked",
                             fix="rebuild the node: os-rerank local up --fresh")
    node.pid_file.unlink(missing_ok=True)
    started = clock()
    log = node.path / "logs" / "stdout.log"
    try:
        stdout = os.fdopen(open_no_follow(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab")
    except OSError as exc:
        raise LocalNodeError(f"cannot write {log}: {exc.strerror}") from None
    try:
        with stdout:
            launcher = subprocess.Popen(
                [str(node.distribution / "bin" / "opensearch"), "-d", "-p", str(node.pid_file)],
                cwd=node.distribution, env=java_env(Path(node.java_home)), stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
                user=run_as.uid, group=run_as.gid, extra_groups=[] if run_as.uid is not None else None)
            try:
                code = launcher.wait(timeout=120)  # the launcher forks the JVM and returns
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
                code = -1
        if code != 0:
            raise LocalNodeError(f"node {node.name} did not start (its launcher exited {code})",
                                 fix="see `os-rerank local logs`")
        progress(note(f"waiting for node {node.name} on {node.url}"))
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
                progress(note(f"still waiting for node {node.name} ({clock() - started:.0f}s, health: "
                         f"{state or 'no answer yet'})"))
            time.sleep(0.5)
    except BaseException:
        try:
            stop_node(node, timeout=30.0)
        except KeyboardInterrupt:  # a second Ctrl-C while stopping: stop without waiting for a clean shutdown
            stop_node(node, timeout=0.0)
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
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # SIGKILL is not instant: wait, so a --fresh or --purge does not race the dying JVM
        if not _is_node_process(pid, node.distribution):
            break
        time.sleep(0.1)
    node.pid_file.unlink(missing_ok=True)
    return True


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
