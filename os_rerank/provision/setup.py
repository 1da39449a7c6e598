"""The provisioning commands as library calls: each returns data for the CLI to print, and never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..credentials import ConnectorCredential
from ..events import OnEvent
from ..mlcommons import MODELS, find_one
from . import lock
from .access import require_access
from .apply import DEPLOY_TIMEOUT_SECONDS, ApplyResult, apply_plan
from .diagnose import open_cluster as open_cluster  # where the CLI and library users open a cluster
from .plan import Plan, desired_state, make_plan
from .preflight import ClusterInfo, is_private_host, preflight
from .state import ClusterState, read_state
from .status import StatusRow, status_rows
from .verify import VerifyReport, verify


def read(cluster: Cluster, config: Config) -> tuple[ClusterInfo, ClusterState]:
    """Preflight, then the current state of every managed resource."""
    info = preflight(cluster)
    return info, read_state(cluster, config, info)


def plan_setup(cluster: Cluster, config: Config, *, private_host: Callable[[str], bool] = is_private_host,
               check_access: bool = True) -> Plan:
    """What setup would do on this cluster (reads only); first, every permission setup needs that the user lacks."""
    from .window import check_window

    if check_access:
        require_access(cluster, config, ("setup",))
    info, state = read(cluster, config)
    check_window(cluster, config)  # a pipeline with processors the nodes lack is refused here, before any write
    desired = desired_state(config, info.version, endpoint_private=private_host(config.sagemaker.connector_url))
    plan = make_plan(desired, state)
    if config.embedding is not None:  # the dense first stage (dense.py)
        from .dense import extend_plan

        plan = extend_plan(plan, cluster, config, state)
    return plan


@dataclass
class SetupResult:
    plan: Plan
    applied: ApplyResult
    writes: int
    verify: VerifyReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "events": [e.to_dict() for e in self.applied.events],
            "writes": self.writes,
            "ids": {"connector": self.applied.connector_id, "model_group": self.applied.model_group_id,
                    "model": self.applied.model_id,
                    **{f"embedding_{k}": v for k, v in self.applied.dense_ids.items()}},
            "verify": self.verify.to_dict() if self.verify else None,
        }


def run_setup(cluster: Cluster, config: Config, credential: ConnectorCredential, *, on_event: OnEvent | None = None,
              run_verify: bool = True, deploy_timeout: float = DEPLOY_TIMEOUT_SECONDS,
              private_host: Callable[[str], bool] = is_private_host) -> SetupResult:
    """Plan, apply, and (unless told not to) verify; `writes` counts every write request sent.

    Planning and applying hold the lock of these resources (lock.py), so a second setup at the same time waits and
    then finds everything made: never two connectors.
    """
    preflight(cluster)  # a cluster that cannot rerank is refused before anything, the lock included, is written
    require_access(cluster, config, ("setup",))  # so is a user who lacks permissions: all of them named at once
    with lock.held(cluster, config, "setup", on_event):
        plan = plan_setup(cluster, config, private_host=private_host, check_access=False)
        applied = apply_plan(plan, cluster, config, credential, on_event, deploy_timeout=deploy_timeout)
    writes = len(cluster.writes())
    report = None
    if run_verify:
        assert applied.model_id is not None
        report = verify(cluster, config, applied.model_id)
    return SetupResult(plan, applied, writes, report)


def run_verify(cluster: Cluster, config: Config) -> VerifyReport:
    preflight(cluster)
    return verify(cluster, config, find_one(cluster, MODELS, config.model.name).id)


def run_status(cluster: Cluster, config: Config) -> list[StatusRow]:
    from .promote import read_default

    info, state = read(cluster, config)
    promotion = read_default(cluster, config.index.name) if state.index is not None else None
    rows = status_rows(config, info, state, promotion)
    if config.embedding is not None:  # the dense first stage (dense.py)
        from .dense import status_lines

        rows += [StatusRow(*line) for line in status_lines(cluster, config)]
    return rows
