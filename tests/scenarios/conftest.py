"""Scenario backends: every scenario runs against the ML Commons double (`fake`) and, when OPENSEARCH_URL is set,
against a real cluster (`real`). Scenario tests never branch on the backend; they talk to it through the CLI.

fake: `tests/fakes` OpenSearchDouble (real HTTP on 127.0.0.1, Painless run by the JDK glue) + the local
      SageMaker-compatible endpoint (`os_rerank.server.app.EndpointServer`, lexical scorer, SigV4 checked).
real: OPENSEARCH_URL; OS_RERANK_ENDPOINT_URL is the endpoint as OpenSearch reaches it, OS_RERANK_LOCAL_ENDPOINT_URL
      as these tests reach it (a running `os-rerank serve`, hf-text-classification contract).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import os_rerank.apply
import os_rerank.cluster
import os_rerank.verify
from os_rerank.cli import main

ENDPOINT_NAME = "os-rerank-test"
# Recognisable fake secrets: a test proves none of them is ever printed.
ACCESS_KEY = "AKIDSCENARIOFAKEKEY01"
SECRET_KEY = "scenario-secret-Zq7Wk2vPx9"
PASSWORD = "scenario-password-Lm4Rt8"


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
    environ: dict[str, str] = field(default_factory=dict)

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

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=dict(self.environ), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def run_json(self, *argv: str) -> tuple[int, Any, str]:
        code, out, err = self.run(*argv, "--json")
        return code, (json.loads(out) if out.strip() else None), err


@pytest.fixture(autouse=True)
def _fast_and_fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fast retries and polling; fake recognisable AWS keys unless the environment has keys (scripts/integration)."""
    monkeypatch.setattr(os_rerank.cluster, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(os_rerank.apply, "POLL_SECONDS", 0.01)
    if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _fake(mlcommons_glue: Any, tmp_path: Path) -> Iterator[Backend]:
    from os_rerank.contracts import get_contract
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.scorers import LexicalScorer
    from tests.fakes.opensearch_double import OpenSearchDouble

    credentials = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}
    endpoint = EndpointServer(get_contract("hf-text-classification"), LexicalScorer(), endpoint_name=ENDPOINT_NAME,
                              credentials=credentials).start()
    double = OpenSearchDouble(mlcommons_glue, version="2.19.0").start()
    try:
        yield Backend("fake", double.url, endpoint.url, endpoint.url, tmp_path, double=double, endpoint=endpoint,
                      environ={"OPENSEARCH_PASSWORD": PASSWORD})
    finally:
        double.stop()
        endpoint.stop()


def _real(tmp_path: Path) -> Iterator[Backend]:
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("OPENSEARCH_URL not set")
    # As scripts/integration exports them: the full invocation URL OpenSearch calls, the base URL boto3 calls.
    endpoint_url = os.environ.get("OS_RERANK_ENDPOINT_URL",
                                  "http://endpoint:8080/endpoints/os-rerank-cross-encoder/invocations")
    local = os.environ.get("OS_RERANK_LOCAL_ENDPOINT_URL", "http://localhost:8080")
    environ = {k: v for k, v in os.environ.items() if k.startswith("OPENSEARCH_")}
    backend = Backend("real", url, endpoint_url, local, tmp_path, environ=environ)
    cleanup = backend.config("cleanup.yaml")
    backend.run("teardown", "--config", str(cleanup))
    try:
        yield backend
    finally:
        backend.run("teardown", "--config", str(cleanup))


@pytest.fixture(params=["fake", "real"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The scenario backend: the double, or a real cluster when OPENSEARCH_URL is set."""
    if request.param == "fake":
        yield from _fake(request.getfixturevalue("mlcommons_glue"), tmp_path)
    else:
        yield from _real(tmp_path)


@pytest.fixture
def fake_backend(mlcommons_glue: Any, tmp_path: Path) -> Iterator[Backend]:
    """The double only: for fault injection, which a real cluster cannot be told to do."""
    yield from _fake(mlcommons_glue, tmp_path)
