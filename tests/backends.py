"""The scenario backends, in one place: a cluster plus an endpoint, driven through the CLI in-process.

- `fake`: the ML Commons double (tests/fakes, real HTTP on 127.0.0.1, Painless run by the JDK glue) and a local
  SageMaker-compatible endpoint (os_rerank.server, lexical scorer, SigV4 checked), both new for each test.
- `real` and `real-secure`: real OpenSearch 2.19.1 nodes that `os-rerank local up` builds and starts once per test
  session (names test-plain and test-secure, ports 9250 and 9251; the secured one over TLS, verified with its CA,
  as admin), and one endpoint per contract for the session on fixed ports, so the connector URL, and with it the
  trusted-endpoint regex setup adds, stays the same from run to run.
  OPENSEARCH_URL (with OPENSEARCH_USERNAME / OPENSEARCH_PASSWORD / OPENSEARCH_CA_CERTS) uses that cluster as `real`
  instead, and the endpoint must then be reachable from it (OS_RERANK_ENDPOINT_HOST, default 127.0.0.1).
  OS_RERANK_REAL=off skips the real variants, saying so; otherwise a node that cannot start fails them.
  OS_RERANK_TEST_SLOT=N (N > 0) gives a second checkout its own nodes and endpoint ports (test<N>-plain on
  9250 + 10N, test<N>-record on 9252 + 10N, endpoints from 18180 + 10N), so two test runs on one machine never
  share a cluster.
Scenario tests never branch on the backend.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from os_rerank.cli import main
from os_rerank.contracts import CONTRACT_NAMES, get_contract
from os_rerank.server.app import EndpointServer
from os_rerank.server.lexical import LexicalScorer

ENDPOINT_NAME = "os-rerank-test"
# Recognisable fake secrets: a test proves none of them is ever printed.
ACCESS_KEY = "AKIDSCENARIOFAKEKEY01"
SECRET_KEY = "scenario-secret-Zq7Wk2vPx9"
PASSWORD = "scenario-password-Lm4Rt8"
REAL_KINDS = ("real", "real-secure")
# The session's endpoints for the real nodes: one port per contract, in CONTRACT_NAMES order.
_SLOT = int(os.environ.get("OS_RERANK_TEST_SLOT", "0") or 0)
_PREFIX = f"test{_SLOT}" if _SLOT else "test"
REAL_ENDPOINT_PORTS = range(18180 + 10 * _SLOT, 18180 + 10 * _SLOT + len(CONTRACT_NAMES))
REAL_NODES = {"real": (f"{_PREFIX}-plain", 9250 + 10 * _SLOT, False),
              "real-secure": (f"{_PREFIX}-secure", 9251 + 10 * _SLOT, True)}
# The fresh node tests/test_recorded.py builds, plays the recorded steps on, and removes.
RECORD_NODE = (f"{_PREFIX}-record", 9252 + 10 * _SLOT)


@dataclass
class Backend:
    """One cluster + endpoint pair, driven through the CLI."""

    kind: str
    url: str
    endpoint_url: str  # as OpenSearch reaches it
    local_endpoint_url: str  # as os-rerank (boto3) reaches it
    tmp_path: Path
    double: Any = None
    endpoint: Any = None
    environ: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a node's password
    endpoints: dict[str, EndpointServer] = field(default_factory=dict)  # contract -> endpoint
    owned: list[EndpointServer] = field(default_factory=list)  # endpoints this backend started and stops

    @property
    def is_real(self) -> bool:
        return self.kind in REAL_KINDS

    @property
    def invocation_url(self) -> str:
        """The connector URL: OS_RERANK_ENDPOINT_URL may already be the full invocation URL."""
        if self.endpoint_url.endswith("/invocations"):
            return self.endpoint_url
        return f"{self.endpoint_url}/endpoints/{ENDPOINT_NAME}/invocations"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be printed: the AWS keys in use and the OpenSearch password."""
        values = (os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                  os.environ.get("AWS_SESSION_TOKEN", ""), self.environ.get("OPENSEARCH_PASSWORD", ""))
        return tuple(v for v in values if v)

    def config(self, name: str = "config.yaml", **sections: dict[str, Any]) -> Path:
        """A config file for this backend in tmp_path; `sections` override/extend the defaults, section by section."""
        base: dict[str, Any] = {
            "opensearch": {"url": self.url, "timeout": 20},
            "sagemaker": {
                "region": "us-west-2",
                "endpoint_url": self.invocation_url,
                "local_endpoint_url": self.local_endpoint_url,
                "contract": "hf-text-classification",
            },
            "connector": {"name": "os-rerank scenario connector"},
            "model": {"name": "os-rerank scenario model", "group": "os-rerank-scenario"},
            "index": {"name": "os-rerank-scenario"},
            "pipeline": {"name": "os_rerank_scenario"},
        }
        for key, value in sections.items():
            base[key] = {**base.get(key, {}), **value}
        path = self.tmp_path / name
        path.write_text(json.dumps(base, indent=2), encoding="utf-8")  # JSON is YAML
        return path

    def endpoint_for(self, contract: str) -> dict[str, str]:
        """sagemaker.endpoint_url / local_endpoint_url of an endpoint that speaks `contract` (started when needed)."""
        if contract not in self.endpoints:
            server = EndpointServer(get_contract(contract), LexicalScorer(), endpoint_name=ENDPOINT_NAME,
                                    credentials=endpoint_credentials()).start()
            self.endpoints[contract] = server
            self.owned.append(server)
        url = self.endpoints[contract].url
        return {"contract": contract, "endpoint_url": f"{url}/endpoints/{ENDPOINT_NAME}/invocations",
                "local_endpoint_url": url}

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=dict(self.environ), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def run_json(self, *argv: str) -> tuple[int, Any, str]:
        code, out, err = self.run(*argv, "--json")
        return code, (json.loads(out) if out.strip() else None), err


def endpoint_credentials() -> dict[str, str]:
    """The key pair the test endpoints accept (tests/conftest.py `aws_test_env` puts it in the boto3 chain)."""
    return {ACCESS_KEY: SECRET_KEY}


def start_fake_backend(glue: Any, tmp_path: Path) -> Iterator[Backend]:
    from tests.fakes.opensearch_double import OpenSearchDouble

    endpoint = EndpointServer(get_contract("hf-text-classification"), LexicalScorer(), endpoint_name=ENDPOINT_NAME,
                              credentials=endpoint_credentials()).start()
    double = OpenSearchDouble(glue, version="2.19.0").start()
    backend = Backend("fake", double.url, endpoint.url, endpoint.url, tmp_path, double=double, endpoint=endpoint,
                      environ={"OPENSEARCH_PASSWORD": PASSWORD}, endpoints={"hf-text-classification": endpoint},
                      owned=[endpoint])
    try:
        yield backend
    finally:
        double.stop()
        for server in backend.owned:
            server.stop()


# --- real nodes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealCluster:
    """A real cluster for the session: its URL and the OPENSEARCH_* variables that reach it."""

    kind: str
    url: str
    environ: dict[str, str] = field(repr=False)  # may hold a node's password
    started_here: bool = False
    name: str | None = None


class RealClusters:
    """The session's real clusters and endpoints, started on first use and stopped at the end if started here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[str, RealCluster | BaseException | str] = {}
        self._endpoints: dict[str, EndpointServer] | None = None

    def cluster(self, kind: str) -> RealCluster:
        """The cluster for `kind`; pytest.skip with the reason when the real layer is off or cannot have it."""
        with self._lock:
            if kind not in self._clusters:
                self._clusters[kind] = self._start(kind)
            found = self._clusters[kind]
        if isinstance(found, str):
            pytest.skip(found)
        if isinstance(found, BaseException):
            pytest.fail(f"the {kind} node could not start: {found} (OS_RERANK_REAL=off skips the real layer)",
                        pytrace=False)
        return found

    def _start(self, kind: str) -> RealCluster | BaseException | str:
        if os.environ.get("OS_RERANK_REAL", "").lower() in ("off", "0", "no", "false"):
            return "OS_RERANK_REAL=off: the real-node layer is switched off"
        if os.environ.get("OPENSEARCH_URL"):
            if kind != "real":
                return "OPENSEARCH_URL names one cluster: the secured variant runs on the local nodes only"
            environ = {k: v for k, v in os.environ.items() if k.startswith("OPENSEARCH_")}
            return RealCluster(kind, os.environ["OPENSEARCH_URL"], environ)
        from os_rerank.local import node as local

        name, port, secure = REAL_NODES[kind]
        ask = local.Ask(name=name, version="2.19.1", port=port, secure=secure, heap="1g")
        home = local.default_home(os.environ)
        try:
            before = local.load_node(home, name)
            running = before is not None and local.status(before).pid is not None
            result = local.up(ask, home=home, cache_root=local.default_cache(os.environ), environ=os.environ)
        except Exception as exc:  # reported by every real test, not raised into pytest's collection
            return exc
        node = result.node
        environ = {"OPENSEARCH_URL": node.url}
        if node.secure:
            environ.update(OPENSEARCH_USERNAME=local.ADMIN_USER, OPENSEARCH_PASSWORD=node.password() or "",
                           OPENSEARCH_CA_CERTS=str(node.ca_certs))
        return RealCluster(kind, node.url, environ, started_here=not running, name=name)

    def endpoints(self) -> dict[str, EndpointServer]:
        """One endpoint per contract, on fixed ports where they are free (so connector URLs stay the same)."""
        with self._lock:
            if self._endpoints is None:
                host = os.environ.get("OS_RERANK_ENDPOINT_HOST", "127.0.0.1")
                self._endpoints = {}
                for contract, port in zip(CONTRACT_NAMES, REAL_ENDPOINT_PORTS, strict=True):
                    try:
                        server = EndpointServer(get_contract(contract), LexicalScorer(), host=host, port=port,
                                                endpoint_name=ENDPOINT_NAME, credentials=endpoint_credentials())
                    except OSError:
                        server = EndpointServer(get_contract(contract), LexicalScorer(), host=host,
                                                endpoint_name=ENDPOINT_NAME, credentials=endpoint_credentials())
                    self._endpoints[contract] = server.start()
            for server in self._endpoints.values():  # a test's injected faults and records stay its own
                server._faults.clear()
                server.clear_received()
            return self._endpoints

    def close(self) -> None:
        from os_rerank.local import node as local

        for server in (self._endpoints or {}).values():
            server.stop()
        if os.environ.get("OS_RERANK_KEEP_NODES"):
            return
        home = local.default_home(os.environ)
        for found in self._clusters.values():
            if isinstance(found, RealCluster) and found.started_here and found.name:
                node = local.load_node(home, found.name)
                if node is not None:
                    local.down(node)


def start_real_backend(clusters: RealClusters, kind: str, tmp_path: Path) -> Iterator[Backend]:
    cluster = clusters.cluster(kind)
    endpoints = clusters.endpoints()
    first = endpoints[CONTRACT_NAMES[0]]
    backend = Backend(kind, cluster.url, f"{first.url}/endpoints/{ENDPOINT_NAME}/invocations", first.url, tmp_path,
                      endpoint=first, environ=dict(cluster.environ), endpoints=endpoints)
    cleanup = backend.config("cleanup.yaml")
    backend.run("teardown", "--config", str(cleanup))
    try:
        yield backend
    finally:
        backend.run("teardown", "--config", str(cleanup))
