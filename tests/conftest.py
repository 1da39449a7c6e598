"""Shared pytest fixtures. Each fixture says what it needs; a missing tool skips with a one-line reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import OpenSearchDouble
from tests.painless.jvm import GlueUnavailable, MLCommonsGlue, start_glue

# The four layers of the suite (README "Tests"), as markers: `python -m pytest -m painless` runs one layer.
_LAYERS = (
    ("painless", ("test_painless_", "test_contracts_golden")),
    ("endpoint", ("test_serve_",)),
    ("scenario", ("scenarios/", "_scenarios", "test_double", "test_rotate", "test_integration_")),
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        layer = next((name for name, parts in _LAYERS if any(p in path for p in parts)), "unit")
        item.add_marker(layer)


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
