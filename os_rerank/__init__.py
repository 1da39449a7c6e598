"""os-rerank: OpenSearch + a SageMaker cross-encoder = search reranking, set up and proven in one command.

A library user calls what the commands call: `load_config`, `connect`, then `plan_setup` / `run_setup` (with
`connector_credential`), `run_verify`, `run_status`, `run_search`, `run_eval`; or the steps underneath them:
`read_state` -> `desired_state` -> `make_plan` -> `apply_plan`. `teardown` is `os_rerank.teardown.teardown`: a name
shared with its module cannot be exported from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API: what a library user imports from here. Names load on first use (PEP 562), so importing the
# package costs nothing and a submodule still imports only what it needs; tests/test_public_api.py pins the list
# and the signatures.
_EXPORTS = {
    "Config": "config",
    "ConnectorCredential": "credentials",
    "connector_credential": "credentials",
    "SetupResult": "provision",
    "plan_setup": "provision",
    "run_setup": "provision",
    "run_status": "provision",
    "run_verify": "provision",
    "load_config": "config",
    "Rendered": "render",
    "render_requests": "render",
    "Cluster": "cluster",
    "connect": "cluster",
    "ClusterState": "state",
    "read_state": "state",
    "ClusterInfo": "preflight",
    "check_cluster": "preflight",
    "read_cluster_info": "preflight",
    "Action": "plan",
    "Desired": "plan",
    "Plan": "plan",
    "desired_state": "plan",
    "make_plan": "plan",
    "ApplyResult": "apply",
    "apply_plan": "apply",
    "status_rows": "status",
    "RotateResult": "rotate",
    "rotate_credentials": "rotate",
    "SearchResult": "search",
    "run_search": "search",
    "EvalReport": "eval",
    "run_eval": "eval",
    "Contract": "contracts",
    "get_contract": "contracts",
    "DeployResult": "aws_endpoint",
    "deploy_endpoint": "aws_endpoint",
    "AwsError": "errors",
    "ClusterError": "errors",
    "ConfigError": "errors",
    "EndpointError": "errors",
    "ExitStatus": "errors",
    "OsRerankError": "errors",
    "RenderError": "errors",
    "VerifyError": "errors",
}

__all__ = [
    "Action",
    "ApplyResult",
    "AwsError",
    "Cluster",
    "ClusterError",
    "ClusterInfo",
    "ClusterState",
    "Config",
    "ConfigError",
    "ConnectorCredential",
    "Contract",
    "DeployResult",
    "Desired",
    "EndpointError",
    "EvalReport",
    "ExitStatus",
    "OsRerankError",
    "Plan",
    "RenderError",
    "Rendered",
    "RotateResult",
    "SearchResult",
    "SetupResult",
    "VerifyError",
    "__version__",
    "apply_plan",
    "check_cluster",
    "connect",
    "connector_credential",
    "deploy_endpoint",
    "desired_state",
    "get_contract",
    "load_config",
    "make_plan",
    "plan_setup",
    "read_cluster_info",
    "read_state",
    "render_requests",
    "rotate_credentials",
    "run_eval",
    "run_search",
    "run_setup",
    "run_status",
    "run_verify",
    "status_rows",
]

if TYPE_CHECKING:
    from .apply import ApplyResult, apply_plan
    from .aws_endpoint import DeployResult, deploy_endpoint
    from .cluster import Cluster, connect
    from .config import Config, load_config
    from .contracts import Contract, get_contract
    from .credentials import ConnectorCredential, connector_credential
    from .errors import (
        AwsError,
        ClusterError,
        ConfigError,
        EndpointError,
        ExitStatus,
        OsRerankError,
        RenderError,
        VerifyError,
    )
    from .eval import run_eval
    from .eval_report import EvalReport
    from .plan import Action, Desired, Plan, desired_state, make_plan
    from .preflight import ClusterInfo, check_cluster, read_cluster_info
    from .provision import SetupResult, plan_setup, run_setup, run_status, run_verify
    from .render import Rendered, render_requests
    from .rotate import RotateResult, rotate_credentials
    from .search import SearchResult, run_search
    from .state import ClusterState, read_state
    from .status import status_rows


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
