"""The AWS side: the SageMaker endpoint (`os-rerank endpoint deploy|status|delete`), its model archive on S3,
presets, and the IAM policies the connector and the operator need. boto3 is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# The public API of this product, loaded on first use (PEP 562) so importing the package costs nothing;
# tests/test_public_api.py pins it.
_EXPORTS = {
    "DeployResult": "deploy",
    "deploy_endpoint": "deploy",
    "endpoint_status": "endpoint",
    "delete_endpoint": "endpoint",
    "DeployPlan": "plan",
    "plan_deploy": "plan",
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
