"""Teardown: remove what setup made, in the order ML Commons allows, tolerant of what is already gone.

pipeline -> index (unless kept) -> undeploy models -> delete models -> delete connectors -> model group (only the
configured group, and only when it is empty). Every step runs even when an earlier one failed; the report lists
each outcome. Cluster settings are left as they are (other connectors may rely on the trusted-endpoint list).
Resources are found by search and read by id (a model's state comes from the realtime GET, not from the search),
and teardown returns only once ML Commons' search no longer shows what it deleted (mlcommons.py says why).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import lock
from . import mlcommons as ml
from .cluster import Cluster
from .config import Config
from .errors import ClusterError, OsRerankError

DELETED = "deleted"
GONE = "already gone"
KEPT = "kept"
FAILED = "failed"
UNDEPLOYED = "undeployed"
RESTORED = "restored"


@dataclass(frozen=True)
class TeardownStep:
    """One resource's outcome: deleted, undeployed, already gone, kept, or failed (with why)."""

    resource: str
    name: str
    id: str | None
    outcome: str
    detail: str = ""

    def line(self) -> str:
        symbols = {DELETED: "-", UNDEPLOYED: "~", RESTORED: "~", GONE: "=", KEPT: "=", FAILED: "!"}
        symbol = symbols.get(self.outcome, "*")
        ident = f" (id {self.id})" if self.id and self.id != self.name else ""
        tail = f": {self.detail}" if self.detail else ""
        return f"{symbol} {self.resource} {self.name}{ident} {self.outcome}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "id": self.id, "outcome": self.outcome,
                "detail": self.detail}


@dataclass
class TeardownReport:
    steps: list[TeardownStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[TeardownStep]:
        return [s for s in self.steps if s.outcome == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.failed, "steps": [s.to_dict() for s in self.steps], "notes": list(self.notes)}


def teardown(cluster: Cluster, config: Config, *, keep_index: bool = False,
             on_step: Callable[[TeardownStep], None] | None = None) -> TeardownReport:
    """Remove the resources `config` names; never raises for one resource, reports it instead.

    Holds the lock of these resources (lock.py) while it works, so it never races a setup.
    """
    report = TeardownReport()
    with lock.held(cluster, config, "teardown", report.notes.append):
        _teardown(cluster, config, keep_index, on_step, report)
    return report


def _teardown(cluster: Cluster, config: Config, keep_index: bool, on_step: Callable[[TeardownStep], None] | None,
              report: TeardownReport) -> None:

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

    if config.embedding is not None:  # first: its pipelines name both models, and it shares the model group
        from .dense import teardown_steps

        teardown_steps(cluster, config, step, delete, keep_index)
    pipeline = config.pipeline.name
    # A default search pipeline that names a deleted pipeline fails every search of its index (promote.py), so the
    # indices that default to ours get their recorded default back first; if that fails, the pipeline stays.
    doomed = set() if keep_index else {config.index.name, f"{config.index.name}-eval"}
    if _release_defaults(cluster, pipeline, doomed, step):
        step("pipeline", pipeline, pipeline, delete(f"/_search/pipeline/{pipeline}"))
    else:
        step("pipeline", pipeline, pipeline, lambda: KEPT, "an index still defaults to it (see above)")
    for index in (config.index.name, f"{config.index.name}-eval"):  # the test index, and the one eval loads
        if keep_index:
            step("index", index, index, lambda: KEPT, "--keep-index")
        else:
            step("index", index, index, delete(f"/{index}"))

    deleted: dict[str, tuple[str, list[str]]] = {}  # kind -> (name, ids deleted)

    def delete_found(kind: str, resource: str, name: str, found: ml.Found) -> None:
        step(resource, name, found.id, delete(ml.path(kind, found.id)))
        if report.steps[-1].outcome in (DELETED, GONE):
            deleted.setdefault(kind, (name, []))[1].append(found.id)

    models = _find(cluster, ml.MODELS, config.model.name, report, on_step)
    for model in models or ():
        if model.model_state in ml.LOADED_STATES:
            step("model", config.model.name, model.id, _undeploy(cluster, model.id), f"was {model.model_state}")
    for model in models or ():
        delete_found(ml.MODELS, "model", config.model.name, model)
    if models is not None and not models:
        step("model", config.model.name, None, lambda: GONE)

    connectors = _find(cluster, ml.CONNECTORS, config.connector.name, report, on_step)
    for connector in connectors or ():
        delete_found(ml.CONNECTORS, "connector", config.connector.name, connector)
    if connectors is not None and not connectors:
        step("connector", config.connector.name, None, lambda: GONE)

    if config.model.group:
        groups = _find(cluster, ml.MODEL_GROUPS, config.model.group, report, on_step)
        for group in groups or ():
            try:  # read by id: the models just deleted are gone, whatever the (lagging) search still says
                left = [m.id for m in _models_in_group(cluster, group.id)]
            except OsRerankError as exc:
                failure = ClusterError(f"cannot list its models: {exc.message}", fix=exc.fix)
                step("model group", config.model.group, group.id, functools.partial(_raise, failure))
                continue
            if left:
                step("model group", config.model.group, group.id, lambda: KEPT,
                     f"still holds {len(left)} other model(s): {', '.join(left)}")
            else:
                delete_found(ml.MODEL_GROUPS, "model group", config.model.group, group)
        if groups is not None and not groups:
            step("model group", config.model.group, None, lambda: GONE)

    _trusted_entry(cluster, config, step, report.notes)
    if config.embedding is not None:
        from .dense import names

        _trusted_entry(cluster, config, step, report.notes, url=names(config).connector_url)
    for kind, (name, ids) in deleted.items():
        if not ml.await_search(cluster, kind, ml.name_query(name), absent=ids):
            report.notes.append(f"ML Commons' search still lists deleted {kind.replace('_', ' ')} "
                                f"{', '.join(ids)}; a command run at once may see them for a moment")


def _release_defaults(cluster: Cluster, pipeline: str, doomed: set[str], step: Callable[..., None]) -> bool:
    """Roll back every index (but those about to be deleted) whose default search pipeline is `pipeline`; False
    when one could not be, so the pipeline must stay."""
    from .promote import indices_defaulting_to, release_index

    try:
        indices = [i for i in indices_defaulting_to(cluster, pipeline) if i not in doomed]
    except OsRerankError as exc:
        step("default pipeline", pipeline, None, functools.partial(_raise, exc))
        return False
    ok = True
    for index in indices:
        try:
            detail = release_index(cluster, index, pipeline)
        except OsRerankError as exc:
            step("default pipeline", index, None, functools.partial(_raise, exc))
            ok = False
            continue
        step("default pipeline", index, None, lambda: RESTORED, detail)
    return ok


def _trusted_entry(cluster: Cluster, config: Config, step: Callable[..., None], notes: list[str],
                   url: str | None = None) -> None:
    """Remove the trusted-endpoint regex setup added for the connector URL, unless another connector still uses it.

    setup adds exactly `url_regex(<connector URL>)` (plan.py), so that entry, and only it, is os-rerank's. The
    other entries, and private_ip_enabled (which other connectors may need), stay as they are.
    """
    from .plan import regex_admits, url_regex
    from .render import MIN_VERSION
    from .state import TRUSTED_REGEX, read_settings

    entry = url_regex(url or config.sagemaker.connector_url)
    try:
        regexes, explicit, _, scope = read_settings(cluster, MIN_VERSION)
    except OsRerankError as exc:
        step("setting", TRUSTED_REGEX, None, functools.partial(_raise, exc))
        return
    if not explicit or entry not in regexes:
        return
    users = sorted({c.id for c in ml.find(cluster, ml.CONNECTORS, {"match_all": {}})
                    if any(regex_admits(entry, str(a.get("url", ""))) for a in c.body.get("actions") or [])})
    if users:
        step("setting", TRUSTED_REGEX, None, lambda: KEPT,
             f"entry {entry} still admits connector(s) {', '.join(users)}")
        return
    kept = [r for r in regexes if r != entry]

    def remove() -> str:
        try:
            cluster.request("PUT", "/_cluster/settings", body={scope: {TRUSTED_REGEX: kept or None}})
        except ClusterError as exc:
            if exc.status == 403:  # an operator's role leaves settings to an admin: not a failed teardown
                notes.append(f"this user may not change cluster settings: an admin can remove {entry} from "
                             f"{TRUSTED_REGEX} (`os-rerank render --what settings` shows the entry)")
                return KEPT
            raise
        return DELETED

    step("setting", TRUSTED_REGEX, None, remove, f"entry {entry}")


def _undeploy(cluster: Cluster, model_id: str) -> Callable[[], str]:
    def run() -> str:
        cluster.request("POST", ml.path(ml.MODELS, model_id, "_undeploy"), missing_ok=True)
        return UNDEPLOYED
    return run


def _find(cluster: Cluster, kind: str, name: str, report: TeardownReport,
          on_step: Callable[[TeardownStep], None] | None) -> Any:
    try:
        return ml.find_by_name(cluster, kind, name)
    except OsRerankError as exc:
        item = TeardownStep(kind.rstrip("s").replace("_", " "), name, None, FAILED, f"cannot list: {exc.message}")
        report.steps.append(item)
        if on_step is not None:
            on_step(item)
        return None


def _raise(exc: OsRerankError) -> str:
    raise exc


def _models_in_group(cluster: Cluster, group_id: str) -> tuple[ml.Found, ...]:
    return ml.models_using(cluster, "model_group_id", group_id)
