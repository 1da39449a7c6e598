"""Search and eval: reranked search through the pipeline (query.py), and what reranking buys, measured
(eval.py, metrics.py), gated (gate.py) and sized (capacity.py).
"""

from __future__ import annotations

import importlib
from typing import Any

# The public API of this product, loaded on first use (PEP 562) so importing the package costs nothing;
# tests/test_public_api.py pins it.
_EXPORTS = {
    "SearchResult": "query",
    "run_search": "query",
    "run_eval": "eval",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
