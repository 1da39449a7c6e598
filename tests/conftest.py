"""Shared pytest fixtures. Each fixture says what it needs; a missing tool skips with a one-line reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import os_rerank.cluster
import os_rerank.provision.apply
from tests.backends import (
    ACCESS_KEY,
    REAL_KINDS,
    SECRET_KEY,
    Backend,
    RealClusters,
    start_fake_backend,
    start_real_backend,
)
from tests.fakes import OpenSearchDouble
from tests.painless.jvm import GlueUnavailable, MLCommonsGlue, start_glue
from tests.support.aws import moto_update_endpoint  # noqa: F401 - a fixture, shared by the AWS-side test modules
from tests.support.dense import dense_backend, embedders  # noqa: F401 - fixtures of the dense first-stage tests

# The four layers of the suite (README "Tests"), as markers: `python -m pytest -m painless` runs one layer. Each test
# module says its layer itself (`pytestmark = pytest.mark.<layer>`), so a new file cannot land in a layer by the
# accident of its name; `real` is added here to every test that runs on a real node, whatever its layer.
LAYERS = ("unit", "painless", "endpoint", "scenario")


def module_layers(module: object) -> list[str]:
    """The layer markers a test module declares in its `pytestmark`."""
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [mark.name for mark in marks if getattr(mark, "name", None) in LAYERS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = sorted({f"{item.module.__name__}: {module_layers(item.module) or 'no layer'}"
                    for item in items if item.module is not None and len(module_layers(item.module)) != 1})
    if wrong:
        raise pytest.UsageError("every test module declares exactly one layer, `pytestmark = pytest.mark.<one of "
                                f"{', '.join(LAYERS)}>`: {'; '.join(wrong)}")
    for item in items:
        params = getattr(item, "callspec", None)
        if params is not None and any(isinstance(v, str) and v in REAL_KINDS for v in params.params.values()):
            item.add_marker("real")  # runs against a real OpenSearch node (tests/backends.py)


@pytest.fixture(scope="session")
def mlcommons_glue() -> Iterator[MLCommonsGlue]:
    """One JVM for the whole session running ML Commons' glue around Painless scripts (tests/painless/)."""
    try:
        glue = start_glue()
    except GlueUnavailable as exc:
        pytest.skip(str(exc))
    yield glue
    glue.close()


@pytest.fixture
def opensearch_double(request: pytest.FixtureRequest) -> Iterator[OpenSearchDouble]:
    """A started OpenSearch + ML Commons + neural-search double on 127.0.0.1 (tests/fakes/), version 2.19.0.

    Connector Painless runs in the session's glue JVM; without a JDK the double still serves everything except
    predict (which then answers 500 and says why).
    """
    try:
        glue = request.getfixturevalue("mlcommons_glue")
    except pytest.skip.Exception:
        glue = None
    with OpenSearchDouble(glue) as double:
        yield double


# --- scenario backends (tests/backends.py) --------------------------------------------------------------------------


@pytest.fixture
def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fast retries and polling; the recognisable fake AWS keys the test endpoints accept; no AWS config files."""
    monkeypatch.setattr(os_rerank.cluster, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(os_rerank.provision.apply, "POLL_SECONDS", 0.01)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def real_clusters() -> Iterator[RealClusters]:
    """The real OpenSearch nodes of this session (started on first use; see tests/backends.py)."""
    clusters = RealClusters()
    yield clusters
    clusters.close()


@pytest.fixture(params=["fake", *REAL_KINDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None) -> Iterator[Backend]:
    """Every scenario backend: the double, a real plain node and a real secured node."""
    if request.param == "fake":
        yield from start_fake_backend(_glue(request), tmp_path)
    else:
        yield from start_real_backend(request.getfixturevalue("real_clusters"), request.param, tmp_path)


@pytest.fixture(params=REAL_KINDS)
def real_only_backend(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None) -> Iterator[Backend]:
    """The real nodes only: for what a double cannot answer (exactness through real ML Commons)."""
    yield from start_real_backend(request.getfixturevalue("real_clusters"), request.param, tmp_path)


@pytest.fixture
def fake_backend(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None) -> Iterator[Backend]:
    """The double only: for fault injection, which a real cluster cannot be told to do."""
    yield from start_fake_backend(_glue(request), tmp_path)


def _glue(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("mlcommons_glue")


@pytest.fixture(autouse=True)
def every_request_declared(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test in which os-rerank sent a request that os_rerank/provision/permissions.py does not declare.

    The role `render --what role` prints comes from that table, so a request added without its row would be a
    permission the printed role lacks.
    """
    from os_rerank.provision.permissions import find_need

    undeclared: list[str] = []
    record = os_rerank.cluster.Cluster._record

    def checked(self: Any, method: str, path: str, status: int, bookkeeping: bool = False) -> None:
        if find_need(method, path) is None:
            undeclared.append(f"{method} {path}")
        record(self, method, path, status, bookkeeping)

    monkeypatch.setattr(os_rerank.cluster.Cluster, "_record", checked)
    yield
    assert not undeclared, ("requests missing from os_rerank/provision/permissions.py REQUESTS: "
                            f"{sorted(set(undeclared))}")
