"""The provisioning commands as library calls: each returns data for the CLI to print, and never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import lock
from .access import require_access
from .apply import DEPLOY_TIMEOUT_SECONDS, ApplyResult, Event, OnEvent, apply_plan
from .cluster import Cluster, connect
from .config import Config
from .credentials import ConnectorCredential
from .errors import ClusterError
from .mlcommons import MODELS, find_by_name
from .plan import Plan, desired_state, make_plan
from .preflight import ClusterInfo, is_private_host, preflight
from .state import ClusterState, read_state
from .status import StatusRow, status_rows
from .verify import VerifyReport, verify


def open_cluster(config: Config) -> Cluster:
    """A Cluster for `config` whose errors carry os-rerank's diagnosis of ML Commons failures (connect installs it)."""
    return connect(config)


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
    def note(message: str) -> None:
        if on_event is not None:
            on_event(Event("wait", "lock", lock.lock_name(config), message))

    preflight(cluster)  # a cluster that cannot rerank is refused before anything, the lock included, is written
    require_access(cluster, config, ("setup",))  # so is a user who lacks permissions: all of them named at once
    with lock.held(cluster, config, "setup", note):
        plan = plan_setup(cluster, config, private_host=private_host, check_access=False)
        applied = apply_plan(plan, cluster, config, credential, on_event, deploy_timeout=deploy_timeout)
    writes = len(cluster.writes())
    report = None
    if run_verify:
        assert applied.model_id is not None
        report = verify(cluster, config, applied.model_id)
    return SetupResult(plan, applied, writes, report)


def model_id_for(cluster: Cluster, config: Config) -> str:
    """The id of the one model named by config; ClusterError when there is none (or several)."""
    found = find_by_name(cluster, MODELS, config.model.name)
    if not found:
        raise ClusterError(f"no model named {config.model.name!r} on the cluster", fix="run `os-rerank setup` first")
    if len(found) > 1:
        raise ClusterError(f"{len(found)} models are named {config.model.name!r}: {', '.join(f.id for f in found)}",
                           fix="run `os-rerank teardown`, then `os-rerank setup`")
    return found[0].id


def run_verify(cluster: Cluster, config: Config) -> VerifyReport:
    preflight(cluster)
    return verify(cluster, config, model_id_for(cluster, config))


def run_status(cluster: Cluster, config: Config) -> list[StatusRow]:
    from .promote import read_default

    info, state = read(cluster, config)
    promotion = read_default(cluster, config.index.name) if state.index is not None else None
    rows = status_rows(config, info, state, promotion)
    if config.embedding is not None:  # the dense first stage (dense.py)
        from .dense import status_lines

        rows += [StatusRow(*line) for line in status_lines(cluster, config)]
    return rows
