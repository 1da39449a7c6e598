"""The local SageMaker-compatible endpoint (`os-rerank serve`). Imports `os_rerank.contracts` only."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public API: what a library user imports from here. Names load on first use (PEP 562), so importing the
# package costs nothing and a submodule still imports only what it needs; tests/test_public_api.py pins the list
# and the signatures.
_EXPORTS = {
    "DEFAULT_ENDPOINT_NAME": "app",
    "EndpointServer": "app",
    "CrossEncoderScorer": "scorers",
    "LexicalScorer": "lexical",
    "Scorer": "scorers",
    "ScorerError": "scorers",
    "load_scorer": "scorers",
}

__all__ = [
    "CrossEncoderScorer",
    "DEFAULT_ENDPOINT_NAME",
    "EndpointServer",
    "LexicalScorer",
    "Scorer",
    "ScorerError",
    "load_scorer",
]

if TYPE_CHECKING:
    from .app import DEFAULT_ENDPOINT_NAME, EndpointServer
    from .lexical import LexicalScorer
    from .scorers import CrossEncoderScorer, Scorer, ScorerError, load_scorer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
