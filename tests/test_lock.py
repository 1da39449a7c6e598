"""The lock's edges that a scenario cannot reach: a holder that was killed, and a lock that cannot be released.

(Two setups at once on every backend are in tests/scenarios/test_setup_scenarios.py.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from os_rerank.config import Config
from os_rerank.errors import ClusterError
from os_rerank.provision import lock

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


class LockCluster:
    """Just the lock index: PUT fails while it exists; GET gives its holder; DELETE may be refused."""

    def __init__(self, holder: dict[str, Any] | None = None, refuse_delete: bool = False) -> None:
        self.holder = holder
        self.refuse_delete = refuse_delete
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        name = path.strip("/")
        if method == "PUT":
            if self.holder is not None:
                raise ClusterError(f"400 resource_already_exists_exception: index [{name}] already exists")
            self.holder = kwargs["body"]["mappings"]["_meta"]
            return {"acknowledged": True}
        if method == "GET":
            return {name: {"mappings": {"_meta": self.holder}}} if self.holder else {}
        if method == "DELETE":
            if self.refuse_delete:
                raise ClusterError("403 no permissions for [indices:admin/delete]")
            self.holder = None
            return {"acknowledged": True}
        raise AssertionError(method)

    def sleep(self, seconds: float) -> None:
        pass


def config() -> Config:
    return Config.model_validate({"opensearch": {"url": "http://localhost:9200"},
                                  "sagemaker": {"endpoint_name": "e", "region": "us-east-1"}})


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


def test_a_lock_left_by_a_killed_process_on_this_host_is_taken_over_at_once() -> None:
    cluster = LockCluster({"owner": f"{socket.gethostname()}:{dead_pid()}", "command": "setup", "since": 0.0})
    notes: list[str] = []
    with lock.held(cluster, config(), "setup", lambda event: notes.append(event.message), wait=0, clock=lambda: 10.0):  # type: ignore[arg-type]
        assert cluster.holder and cluster.holder["owner"].endswith(f":{os.getpid()}")
    assert any("taking over the lock" in n and "no longer runs" in n for n in notes)


@pytest.mark.parametrize("owner", [f"{socket.gethostname()}:{os.getpid()}", "another-host:1"])
def test_a_holder_that_may_still_run_is_waited_for(owner: str) -> None:
    cluster = LockCluster({"owner": owner, "command": "teardown", "since": 0.0})
    held = lock.held(cluster, config(), "setup", wait=0, clock=lambda: 10.0)  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match="another os-rerank teardown .* has held the lock"), held:
        pass
    assert ("DELETE", f"/{lock.lock_name(config())}") not in cluster.calls


def test_a_lock_that_cannot_be_released_is_said() -> None:
    cluster = LockCluster(refuse_delete=True)
    notes: list[str] = []
    with lock.held(cluster, config(), "setup", lambda event: notes.append(event.message)):  # type: ignore[arg-type]
        pass
    assert len(notes) == 1 and notes[0].startswith(f"could not release the lock {lock.lock_name(config())}")
    assert "indices:admin/delete" in notes[0] and "delete that index" in notes[0]
