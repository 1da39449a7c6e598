"""Status: every resource os-rerank manages, with its id and state, read from the cluster (GETs only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..mlcommons import PRIVATE_IP, TRUSTED_REGEX, regex_admits
from .plan_compare import pipeline_fields
from .preflight import ClusterInfo
from .promote import IndexDefault
from .state import ClusterState


@dataclass(frozen=True)
class StatusRow:
    resource: str
    name: str
    id: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "id": self.id, "state": self.state}


HEADERS = ("resource", "name", "id", "state")


def status_rows(config: Config, info: ClusterInfo, state: ClusterState,
                promotion: IndexDefault | None = None) -> list[StatusRow]:
    """One row per resource (several when names collide; `missing` when absent); `promotion`: the index's default
    search pipeline (promote.py), shown after the index."""
    url = config.sagemaker.connector_url
    rows = [StatusRow("cluster", config.opensearch.url, "-", f"OpenSearch {info.version_text}")]
    admitted = next((rx for rx in state.trusted_regexes if regex_admits(rx, url)), None)
    rows.append(StatusRow("setting", TRUSTED_REGEX, "-",
                          f"admits the connector URL ({admitted})" if admitted else "does NOT admit the connector URL"))
    if state.private_ip_enabled is not None:
        rows.append(StatusRow("setting", PRIVATE_IP, "-", str(state.private_ip_enabled).lower()))

    def many(found: tuple[Any, ...]) -> str:
        return f" ({len(found)} share this name)" if len(found) > 1 else ""

    for c in state.connectors or ():
        rows.append(StatusRow("connector", config.connector.name, c.id, "exists" + many(state.connectors)))
    if not state.connectors:
        rows.append(StatusRow("connector", config.connector.name, "-", "missing"))
    if config.model.group:
        for g in state.model_groups:
            rows.append(StatusRow("model group", config.model.group, g.id, "exists" + many(state.model_groups)))
        if not state.model_groups:
            rows.append(StatusRow("model group", config.model.group, "-", "missing"))
    for m in state.models:
        rows.append(StatusRow("model", config.model.name, m.id,
                              f"{m.model_state} (connector {m.connector_id})" + many(state.models)))
    if not state.models:
        rows.append(StatusRow("model", config.model.name, "-", "missing"))
    if state.index is None:
        rows.append(StatusRow("index", config.index.name, "-", "missing"))
    else:
        rows.append(StatusRow("index", config.index.name, config.index.name, f"{state.index.count} documents"))
    if promotion is not None:
        rows.append(StatusRow("default pipeline", promotion.index, "-", promotion.describe(config.pipeline.name)))
    if state.pipeline is None:
        rows.append(StatusRow("pipeline", config.pipeline.name, "-", "missing"))
    else:
        model_id = pipeline_fields(state.pipeline)["model_id"]
        ours = {m.id for m in state.models}
        note = "" if model_id in ours else " (not the configured model)"
        rows.append(StatusRow("pipeline", config.pipeline.name, config.pipeline.name, f"reranks with model "
                              f"{model_id}{note}"))
    return rows
