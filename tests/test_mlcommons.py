"""mlcommons.py is the one place ML Commons' vocabulary lives: its states, its paths, find-one, deploy-and-wait.

Two copies of "is this model loaded / failed" once disagreed (apply stopped at LOAD_FAILED, rotate waited for the
timeout); these tests hold every command to the one set, and the source to one spelling of the paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from os_rerank import mlcommons as ml
from os_rerank.cluster import Cluster
from os_rerank.config import Config
from os_rerank.credentials import ConnectorCredential
from os_rerank.errors import ClusterError

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
Answer = Any | Callable[[], Any]


class Routed:
    """Answers by (method, path regex); an answer that is an exception is raised; records every request."""

    def __init__(self, routes: list[tuple[str, str, Answer]]) -> None:
        self.routes = routes
        self.sent: list[tuple[str, str]] = []

    def perform_request(self, method: str, path: str, params: Any = None, body: Any = None,
                        headers: Any = None) -> Any:
        self.sent.append((method, path))
        for want, pattern, answer in self.routes:
            if want == method and re.search(pattern, path):
                value = answer() if callable(answer) else answer
                if isinstance(value, Exception):
                    raise value
                return value
        raise AssertionError(f"unrouted {method} {path}")


def routed(routes: list[tuple[str, str, Answer]]) -> tuple[Cluster, Routed]:
    transport = Routed(routes)
    return Cluster(client=type("C", (), {"transport": transport})(), url="http://os:9200",
                   sleep=lambda _: None), transport


def gets(transport: Routed) -> int:
    return sum(1 for m, p in transport.sent if m == "GET" and p.startswith(ml.path(ml.MODELS)))


@pytest.mark.parametrize("state", sorted(ml.FAILED_STATES))
def test_deploy_stops_at_once_on_every_failed_state(state: str) -> None:
    cluster, transport = routed([("POST", r"/_deploy$", {"task_id": "t"}),
                                 ("GET", r"/models/m1$", {"model_state": state})])
    with pytest.raises(ClusterError) as err:
        ml.deploy(cluster, "m1", timeout=60, poll=1)
    assert err.value.message == f"model m1 is {state}"
    assert gets(transport) == 1  # no waiting for a state that cannot change


@pytest.mark.parametrize("state", sorted(ml.FAILED_STATES))
def test_rotate_stops_at_once_on_every_failed_state_as_apply_does(state: str, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """The disagreement this module ended: rotate used to poll a LOAD_FAILED model until its timeout."""
    import contextlib

    from os_rerank.provision import rotate

    monkeypatch.setattr(rotate.lock, "held", lambda *a, **k: contextlib.nullcontext())
    states = iter(["DEPLOYED", state])  # found deployed; after the credential update its deploy fails
    cluster, transport = routed([
        ("POST", r"/connectors/_search$", {"hits": {"hits": [{"_id": "c1"}]}}),
        ("GET", r"/connectors/c1$", {"name": "os-rerank sagemaker cross-encoder"}),
        ("POST", r"/models/_search$", {"hits": {"hits": [{"_id": "m1"}]}}),
        ("GET", r"/models/m1$", lambda: {"model_state": next(states, state), "connector_id": "c1"}),
        ("POST", r"/_undeploy$", {}),
        ("PUT", r"/connectors/c1$", {}),
        ("POST", r"/_deploy$", {}),
    ])
    config = Config.model_validate({"sagemaker": {"region": "us-west-2", "endpoint_name": "e"}})
    cred = ConnectorCredential({"access_key": "AKIDEXAMPLE", "secret_key": "x" * 40}, temporary=False)
    with pytest.raises(ClusterError) as err:
        rotate.rotate_credentials(cluster, config, cred, verify=None, timeout=60, poll=1)
    assert err.value.message == f"model m1 is {state} after the credential update"
    assert "rotate-credentials" in (err.value.fix or "")
    assert gets(transport) == 2  # the realtime read of what was found, then one poll


def test_deploy_times_out_after_timeout_over_poll_reads() -> None:
    cluster, transport = routed([("POST", r"/_deploy$", {}), ("GET", r"/models/m1$", {"model_state": "DEPLOYING"})])
    with pytest.raises(ClusterError) as err:
        ml.deploy(cluster, "m1", timeout=3, poll=1, command="rotate-credentials", timeout_flag=False)
    assert err.value.message == "model m1 is still DEPLOYING after 3s"
    assert err.value.fix == "check `os-rerank status`, wait and run rotate-credentials again"
    assert gets(transport) == 3


def test_find_one_names_none_and_several() -> None:
    cluster, _ = routed([("POST", r"/models/_search$", {"hits": {"hits": []}})])
    with pytest.raises(ClusterError) as err:
        ml.find_one(cluster, ml.MODELS, "m")
    assert (err.value.message, err.value.fix) == ("no model named 'm' on the cluster", "run `os-rerank setup` first")

    cluster, _ = routed([("POST", r"/connectors/_search$", {"hits": {"hits": [{"_id": "b"}, {"_id": "a"}]}}),
                         ("GET", r"/connectors/[ab]$", {"name": "c"})])
    with pytest.raises(ClusterError) as err:
        ml.find_one(cluster, ml.CONNECTORS, "c")
    assert err.value.message == "2 connectors are named 'c' (a, b); os-rerank will not guess which one is its own"


def test_the_paths_are_spelled_once() -> None:
    """Every ML Commons path in the package comes from mlcommons.path (permissions.py declares each request's
    permission as a literal table, checked against every request sent; see tests/conftest.py)."""
    allowed = {"mlcommons.py", "permissions.py"}
    found = []
    for file in sorted((ROOT / "os_rerank").rglob("*.py")):
        if file.name in allowed or "server" in file.parts or "local" in file.parts:
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if "/_plugins/_ml" in line:
                found.append(f"{file.relative_to(ROOT)}:{number}")
    assert not found, "ML Commons paths spelled outside mlcommons.py: " + ", ".join(found)


def test_one_state_set_decides_loaded_and_failed() -> None:
    assert ml.DEPLOYED in ml.LOADED_STATES
    assert not ml.LOADED_STATES & ml.FAILED_STATES
    assert {"DEPLOY_FAILED", "LOAD_FAILED"} == ml.FAILED_STATES
