"""One writing os-rerank command at a time per set of resources: a lock that is an index.

Two `setup` runs at once on an empty cluster each found no connector and each created one (ML Commons lets names
repeat), and every later run refused the duplicates until a teardown. Creating an index is atomic in OpenSearch:
of two `PUT /<index>` exactly one succeeds and the other gets `resource_already_exists_exception`. So `setup`,
`teardown` and `rotate-credentials` first create the hidden index `os-rerank-lock-<hash of the resource names>`
(who holds it, doing what, since when, in its mapping's `_meta`) and delete it when done. A second command waits
for it, saying who holds it; takes over a lock older than STALE_SECONDS (left by a run that was killed), or at once
when its holder was a process on this host that no longer runs; and gives up after WAIT_SECONDS. A lock that cannot
be released (a 403 for a user without `indices:admin/delete` on it, a lost connection) is said, not swallowed: the
next run would otherwise wait for it in silence. The lock's two requests are bookkeeping: not counted as writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError
from ..events import Event, OnEvent

PREFIX = "os-rerank-lock-"
STALE_SECONDS = 900.0
WAIT_SECONDS = 300.0
POLL_SECONDS = 1.0


def lock_name(config: Config) -> str:
    """The lock index for the resources `config` names (two configs naming the same ones share it)."""
    names = (config.connector.name, config.model.name, config.model.group or "", config.index.name,
             config.pipeline.name)
    return PREFIX + hashlib.sha256("\0".join(names).encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def held(cluster: Cluster, config: Config, command: str, on_event: OnEvent | None = None, *,
         wait: float = WAIT_SECONDS, clock: Callable[[], float] = time.time) -> Iterator[None]:
    """Hold the lock for `config`'s resources while the block runs; ClusterError if another holder keeps it."""
    name = lock_name(config)

    def note(message: str, kind: str = "wait") -> None:
        if on_event is not None:
            on_event(Event(kind, "lock", name, message))

    owner = f"{socket.gethostname()}:{os.getpid()}"
    deadline = clock() + wait
    said = 0.0
    while True:
        meta = {"owner": owner, "command": command, "since": clock()}
        body = {"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "hidden": True}},
                "mappings": {"_meta": meta}}
        try:
            cluster.request("PUT", f"/{name}", body=body, bookkeeping=True)
            break
        except ClusterError as exc:
            if "resource_already_exists" not in exc.message:
                raise
        holder = _holder(cluster, name)
        age = clock() - float(holder.get("since") or clock())
        if age > STALE_SECONDS or _abandoned(holder):
            gone = "" if age > STALE_SECONDS else ", which no longer runs"
            note(f"taking over the lock {name}, left {age:.0f}s ago by {_who(holder)}{gone}")
            cluster.request("DELETE", f"/{name}", missing_ok=True, bookkeeping=True)
            continue
        if clock() >= deadline:
            raise ClusterError(
                f"another os-rerank {holder.get('command', 'command')} ({_who(holder)}) has held the lock {name} "
                f"for {age:.0f}s",
                fix=f"wait for it to finish; if it was killed, delete the index {name} (it is taken over after "
                f"{STALE_SECONDS:.0f}s)")
        if clock() - said >= 10:
            said = clock()
            note(f"waiting for another os-rerank {holder.get('command', 'command')} ({_who(holder)}, "
                 f"{age:.0f}s) to finish with these resources")
        cluster.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        try:
            cluster.request("DELETE", f"/{name}", missing_ok=True, bookkeeping=True)
        except ClusterError as exc:
            note(f"could not release the lock {name} ({exc.message}); delete that index, or the next run on "
                 f"these resources waits for it (up to {STALE_SECONDS:.0f}s)", "failed")


def _holder(cluster: Cluster, name: str) -> dict[str, Any]:
    """The lock's `_meta` (owner, command, since), or {} when it is gone meanwhile."""
    info = cluster.request("GET", f"/{name}", missing_ok=True, bookkeeping=True)
    entry: Any = {}
    if isinstance(info, dict) and info:
        entry = info.get(name) or next(iter(info.values()))
    meta = ((entry or {}).get("mappings") or {}).get("_meta") or {}
    return dict(meta) if isinstance(meta, dict) else {}


def _abandoned(holder: dict[str, Any]) -> bool:
    """The holder was a process on this host that has exited (a killed run): its lock can go at once."""
    host, _, pid = str(holder.get("owner") or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it runs, as another user
        return False
    return False


def _who(holder: dict[str, Any]) -> str:
    return str(holder.get("owner") or "someone")
