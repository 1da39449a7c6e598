"""Shared pytest fixtures. Each fixture says what it needs; a missing tool skips with a one-line reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.painless.jvm import GlueUnavailable, MLCommonsGlue, start_glue


@pytest.fixture(scope="session")
def mlcommons_glue() -> Iterator[MLCommonsGlue]:
    """One JVM for the whole session running ML Commons' glue around Painless scripts (tests/painless/)."""
    try:
        glue = start_glue()
    except GlueUnavailable as exc:
        pytest.skip(str(exc))
    yield glue
    glue.close()
