"""Provisioning: config -> render -> plan -> apply -> verify, and the commands that change a cluster.

setup (setup.py) renders the exact requests (render.py), plans them against what the cluster holds
(state.py, plan.py; dense.py for the dense first stage), applies exactly the plan (apply.py), and
verifies the result (verify.py); teardown, promote and rotate are plans and runs of their own.
"""

from __future__ import annotations

import importlib
from typing import Any

# The public API of this product, loaded on first use (PEP 562) so importing the package costs nothing;
# tests/test_public_api.py pins it.
_EXPORTS = {
    "SetupResult": "setup",
    "plan_setup": "setup",
    "run_setup": "setup",
    "run_status": "setup",
    "run_verify": "setup",
    "Desired": "plan",
    "desired_state": "plan",
    "make_plan": "plan",
    "ApplyResult": "apply",
    "apply_plan": "apply",
    "ClusterState": "state",
    "read_state": "state",
    "Rendered": "render",
    "render_requests": "render",
    "TeardownPlan": "teardown",
    "plan_teardown": "teardown",
    "run_teardown": "teardown",
    "RotateResult": "rotate",
    "rotate_credentials": "rotate",
    "VerifyReport": "verify",
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
