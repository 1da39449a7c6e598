"""os-rerank: OpenSearch + a SageMaker cross-encoder = search reranking, set up and proven in one command.

A library user calls what the commands call: `load_config`, `connect`, then `plan_setup` / `run_setup` (with
`connector_credential`), `run_verify`, `run_status`, `run_search`, `run_eval`; or the steps underneath them:
`read_state` -> `desired_state` -> `make_plan` -> `apply_plan`. `teardown` is
`os_rerank.provision.teardown.teardown`: a name shared with its module cannot be exported from here.
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
    "SetupResult": "provision.setup",
    "plan_setup": "provision.setup",
    "run_setup": "provision.setup",
    "run_status": "provision.setup",
    "run_verify": "provision.setup",
    "load_config": "config",
    "Rendered": "provision.render",
    "render_requests": "provision.render",
    "Cluster": "cluster",
    "connect": "cluster",
    "ClusterState": "provision.state",
    "read_state": "provision.state",
    "ClusterInfo": "provision.preflight",
    "check_cluster": "provision.preflight",
    "read_cluster_info": "provision.preflight",
    "Action": "provision.plan",
    "Desired": "provision.plan",
    "Plan": "provision.plan",
    "desired_state": "provision.plan",
    "make_plan": "provision.plan",
    "ApplyResult": "provision.apply",
    "apply_plan": "provision.apply",
    "status_rows": "provision.status",
    "RotateResult": "provision.rotate",
    "rotate_credentials": "provision.rotate",
    "SearchResult": "search.query",
    "run_search": "search.query",
    "EvalReport": "search.eval",
    "run_eval": "search.eval",
    "Contract": "contracts",
    "get_contract": "contracts",
    "DeployResult": "aws.endpoint",
    "deploy_endpoint": "aws.endpoint",
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
    from .aws.endpoint import DeployResult, deploy_endpoint
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
    from .provision.apply import ApplyResult, apply_plan
    from .provision.plan import Action, Desired, Plan, desired_state, make_plan
    from .provision.preflight import ClusterInfo, check_cluster, read_cluster_info
    from .provision.render import Rendered, render_requests
    from .provision.rotate import RotateResult, rotate_credentials
    from .provision.setup import SetupResult, plan_setup, run_setup, run_status, run_verify
    from .provision.state import ClusterState, read_state
    from .provision.status import status_rows
    from .search.eval import run_eval
    from .search.eval_report import EvalReport
    from .search.query import SearchResult, run_search


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
