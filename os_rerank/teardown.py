"""Teardown: remove what setup made, in the order ML Commons allows, tolerant of what is already gone.

pipeline -> index (unless kept) -> undeploy models -> delete models -> delete connectors -> model group (only the
configured group, and only when it is empty). Every step runs even when an earlier one failed; the report lists
each outcome. Cluster settings are left as they are (other connectors may rely on the trusted-endpoint list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cluster import Cluster
from .config import Config
from .errors import ClusterError, OsRerankError
from .plan import LOADED_STATES
from .state import find_by_name

DELETED = "deleted"
GONE = "already gone"
KEPT = "kept"
FAILED = "failed"
UNDEPLOYED = "undeployed"


@dataclass(frozen=True)
class TeardownStep:
    """One resource's outcome: deleted, undeployed, already gone, kept, or failed (with why)."""

    resource: str
    name: str
    id: str | None
    outcome: str
    detail: str = ""

    def line(self) -> str:
        symbol = {DELETED: "-", UNDEPLOYED: "~", GONE: "=", KEPT: "=", FAILED: "!"}.get(self.outcome, "*")
        ident = f" (id {self.id})" if self.id and self.id != self.name else ""
        tail = f": {self.detail}" if self.detail else ""
        return f"{symbol} {self.resource} {self.name}{ident} {self.outcome}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "id": self.id, "outcome": self.outcome,
                "detail": self.detail}


@dataclass
class TeardownReport:
    steps: list[TeardownStep] = field(default_factory=list)

    @property
    def failed(self) -> list[TeardownStep]:
        return [s for s in self.steps if s.outcome == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.failed, "steps": [s.to_dict() for s in self.steps]}


def teardown(cluster: Cluster, config: Config, *, keep_index: bool = False,
             on_step: Callable[[TeardownStep], None] | None = None) -> TeardownReport:
    """Remove the resources `config` names; never raises for one resource, reports it instead."""
    report = TeardownReport()

    def step(resource: str, name: str, id: str | None, action: Callable[[], str], detail: str = "") -> None:
        try:
            outcome = action()
            item = TeardownStep(resource, name, id, outcome, detail if outcome != GONE else "")
        except OsRerankError as exc:
            fix = f" (fix: {exc.fix})" if exc.fix else ""
            item = TeardownStep(resource, name, id, FAILED, exc.message + fix)
        report.steps.append(item)
        if on_step is not None:
            on_step(item)

    def delete(path: str) -> Callable[[], str]:
        def run() -> str:
            return GONE if cluster.request("DELETE", path, missing_ok=True) is None else DELETED
        return run

    pipeline = config.pipeline.name
    step("pipeline", pipeline, pipeline, delete(f"/_search/pipeline/{pipeline}"))
    index = config.index.name
    if keep_index:
        step("index", index, index, lambda: KEPT, "--keep-index")
    else:
        step("index", index, index, delete(f"/{index}"))

    models = _find(cluster, "models", config.model.name, report, on_step)
    for model in models or ():
        if model.model_state in LOADED_STATES:
            step("model", model.body.get("name", config.model.name), model.id,
                 _undeploy(cluster, model.id), f"was {model.model_state}")
    for model in models or ():
        step("model", config.model.name, model.id, delete(f"/_plugins/_ml/models/{model.id}"))
    if models is not None and not models:
        step("model", config.model.name, None, lambda: GONE)

    connectors = _find(cluster, "connectors", config.connector.name, report, on_step)
    for connector in connectors or ():
        step("connector", config.connector.name, connector.id, delete(f"/_plugins/_ml/connectors/{connector.id}"))
    if connectors is not None and not connectors:
        step("connector", config.connector.name, None, lambda: GONE)

    if config.model.group:
        groups = _find(cluster, "model_groups", config.model.group, report, on_step)
        for group in groups or ():
            left = _models_in_group(cluster, group.id)
            if left:
                step("model group", config.model.group, group.id, lambda: KEPT,
                     f"still holds {left} model(s) not made by os-rerank")
            else:
                step("model group", config.model.group, group.id,
                     delete(f"/_plugins/_ml/model_groups/{group.id}"))
        if groups is not None and not groups:
            step("model group", config.model.group, None, lambda: GONE)
    return report


def _undeploy(cluster: Cluster, model_id: str) -> Callable[[], str]:
    def run() -> str:
        cluster.request("POST", f"/_plugins/_ml/models/{model_id}/_undeploy", missing_ok=True)
        return UNDEPLOYED
    return run


def _find(cluster: Cluster, kind: str, name: str, report: TeardownReport,
          on_step: Callable[[TeardownStep], None] | None) -> Any:
    try:
        return find_by_name(cluster, kind, name)
    except OsRerankError as exc:
        item = TeardownStep(kind.rstrip("s").replace("_", " "), name, None, FAILED, f"cannot list: {exc.message}")
        report.steps.append(item)
        if on_step is not None:
            on_step(item)
        return None


def _models_in_group(cluster: Cluster, group_id: str) -> int:
    body = {"query": {"term": {"model_group_id": group_id}}, "size": 0}
    try:
        result = cluster.request("POST", "/_plugins/_ml/models/_search", body=body, missing_ok=True)
    except ClusterError as exc:
        if "index_not_found" in exc.message:
            return 0
        raise
    total = ((result or {}).get("hits") or {}).get("total") or 0
    return int(total.get("value", 0) if isinstance(total, dict) else total)
