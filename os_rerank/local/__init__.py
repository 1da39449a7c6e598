"""`os-rerank local`: a real OpenSearch node with ML Commons and neural-search on this machine, without Docker.

`maven_repository` chooses where artifacts come from, `maven` fetches and checks them, `distribution` says what a node
of a version is made of (pure), and `node` builds, starts, inspects and stops it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public API: what a library user imports from here. Names load on first use (PEP 562), so importing the
# package costs nothing and a submodule still imports only what it needs; tests/test_public_api.py pins the list
# and the signatures.
_EXPORTS = {
    "Ask": "node",
    "NodeStatus": "node",
    "UpResult": "node",
    "down": "node",
    "status": "node",
    "up": "node",
    "ADMIN_USER": "layout",
    "NodeInfo": "layout",
    "default_cache": "layout",
    "default_home": "layout",
    "load_node": "layout",
}

__all__ = [
    "ADMIN_USER",
    "Ask",
    "NodeInfo",
    "NodeStatus",
    "UpResult",
    "default_cache",
    "default_home",
    "down",
    "load_node",
    "status",
    "up",
]

if TYPE_CHECKING:
    from .layout import ADMIN_USER, NodeInfo, default_cache, default_home, load_node
    from .node import Ask, NodeStatus, UpResult, down, status, up


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
