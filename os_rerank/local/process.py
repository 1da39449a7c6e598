"""A built node as a process: start it as its user and wait until it is healthy, find it by its pid (checked against
the command line, never a stale pid file), read its health, memory and log, and stop it. node.py's commands (`up`,
`status`, `down`) are built on these.
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
from collections.abc import Callable
from pathlib import Path

from ..errors import LocalNodeError
from ..events import note
from .build import java_env
from .host import RunAs
from .layout import (
    ADMIN_USER,
    NodeInfo,
    Progress,
    open_no_follow,
    quiet,
)

START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0


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
