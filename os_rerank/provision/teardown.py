"""Teardown: remove what setup made, in the order ML Commons allows, tolerant of what is already gone.

A plan, then its run: `plan_teardown` reads the cluster and returns every step with the exact requests it sends
(wire.py), `os-rerank teardown --dry-run` prints it, and `run_teardown` sends those requests and nothing else.
Order: indices defaulting to the pipeline get their recorded default back -> pipeline -> index (unless kept) ->
undeploy models -> delete models -> delete connectors -> model group (only the configured group, and only when
no other model is in it) -> the trusted-endpoint entry setup added (unless another connector still needs it).
Every step runs even when an earlier one failed; the report lists each outcome. Resources are found by search and
read by id (a model's state comes from the realtime GET, not from the search), and teardown returns only once ML
Commons' search no longer shows what it deleted (mlcommons.py says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError, OsRerankError
from ..events import Event, OnEvent
from ..wire import Request
from . import lock

DELETED = "deleted"
GONE = "already gone"
KEPT = "kept"
FAILED = "failed"
UNDEPLOYED = "undeployed"
RESTORED = "restored"
SYMBOLS = {DELETED: "-", UNDEPLOYED: "~", RESTORED: "~", GONE: "=", KEPT: "=", FAILED: "!"}


@dataclass(frozen=True)
class TeardownStep:
    """One resource's outcome: deleted, undeployed, already gone, kept, or failed (with why)."""

    resource: str
    name: str
    id: str | None
    outcome: str
    detail: str = ""

    def event(self) -> Event:
        kinds = {DELETED: "delete", UNDEPLOYED: "undeploy", RESTORED: "update", GONE: "unchanged", KEPT: "unchanged",
                 FAILED: "failed"}
        ident = f" (id {self.id})" if self.id and self.id != self.name else ""
        tail = f": {self.detail}" if self.detail else ""
        return Event(kinds.get(self.outcome, self.outcome), self.resource, self.name,
                     f"{self.resource} {self.name}{ident} {self.outcome}{tail}", self.id)

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


@dataclass(frozen=True)
class TeardownAction:
    """One planned step: the outcome it has when its requests succeed (a delete answered 404 is `already gone`)."""

    resource: str
    name: str
    id: str | None
    outcome: str
    detail: str = ""
    requests: tuple[Request, ...] = ()
    kind: str | None = None  # the ML Commons kind a delete removes: teardown waits until search agrees

    def line(self) -> str:
        """The step as `teardown --dry-run` prints it."""
        planned = {DELETED: "to delete", UNDEPLOYED: "to undeploy", RESTORED: "to restore"}
        ident = f" (id {self.id})" if self.id and self.id != self.name else ""
        tail = f": {self.detail}" if self.detail else ""
        return (f"{SYMBOLS.get(self.outcome, '*')} {self.resource} {self.name}{ident} "
                f"{planned.get(self.outcome, self.outcome)}{tail}")

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "id": self.id, "outcome": self.outcome,
                "detail": self.detail, "requests": [r.to_dict() for r in self.requests]}


@dataclass(frozen=True)
class TeardownPlan:
    """What teardown does, in order (a step that could not be planned is `failed`, and says why)."""

    actions: tuple[TeardownAction, ...]

    @property
    def failed(self) -> list[TeardownAction]:
        return [a for a in self.actions if a.outcome == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": True, "actions": [a.to_dict() for a in self.actions]}

    def lines(self) -> list[str]:
        out = []
        for action in self.actions:
            out.append(action.line())
            out.extend(f"    {r.method} {r.shown_path}" for r in action.requests)
        return out


def teardown(cluster: Cluster, config: Config, *, keep_index: bool = False,
             on_event: OnEvent | None = None) -> TeardownReport:
    """Remove the resources `config` names; never raises for one resource, reports it instead.

    Holds the lock of these resources (lock.py) while it plans and works, so it never races a setup.
    """
    report = TeardownReport()
    with lock.held(cluster, config, "teardown", lambda event: report.notes.append(event.message)):
        run_teardown(cluster, plan_teardown(cluster, config, keep_index=keep_index), report, on_event)
    return report


def plan_teardown(cluster: Cluster, config: Config, *, keep_index: bool = False) -> TeardownPlan:
    """The steps teardown takes on this cluster, with their requests; reads only."""
    actions: list[TeardownAction] = []

    def failed(resource: str, name: str, id: str | None, exc: OsRerankError, prefix: str = "") -> TeardownAction:
        fix = f" (fix: {exc.fix})" if exc.fix else ""
        return TeardownAction(resource, name, id, FAILED, prefix + exc.message + fix)

    def delete(resource: str, name: str, id: str | None, path: str, kind: str | None = None,
               detail: str = "") -> TeardownAction:
        return TeardownAction(resource, name, id, DELETED, detail, (Request("DELETE", path, missing_ok=True),), kind)

    # The dense path's connectors and models this teardown deletes: their trusted entries and group may go.
    leaving: set[str] = set()
    leaving_models: set[str] = set()
    if config.embedding is not None:  # first: its pipelines name both models, and it shares the model group
        dense_actions, leaving, leaving_models = _dense_actions(cluster, config, keep_index, delete, failed)
        actions.extend(dense_actions)
    pipeline = config.pipeline.name
    # A default search pipeline that names a deleted pipeline fails every search of its index (promote.py), so the
    # indices that default to ours get their recorded default back first; if that fails, the pipeline stays.
    doomed = set() if keep_index else {config.index.name, f"{config.index.name}-eval"}
    actions.extend(_release_defaults(cluster, pipeline, doomed, failed))
    actions.append(delete("pipeline", pipeline, pipeline, f"/_search/pipeline/{pipeline}"))
    for index in (config.index.name, f"{config.index.name}-eval"):  # the test index, and the one eval loads
        if keep_index:
            actions.append(TeardownAction("index", index, index, KEPT, "--keep-index"))
        else:
            actions.append(delete("index", index, index, f"/{index}"))

    def find(kind: str, name: str) -> tuple[ml.Found, ...] | None:
        try:
            return ml.find_by_name(cluster, kind, name)
        except OsRerankError as exc:
            actions.append(TeardownAction(kind.rstrip("s").replace("_", " "), name, None, FAILED,
                                          f"cannot list: {exc.message}"))
            return None

    models = find(ml.MODELS, config.model.name)
    for model in models or ():
        if model.model_state in ml.LOADED_STATES:
            actions.append(TeardownAction("model", config.model.name, model.id, UNDEPLOYED, f"was {model.model_state}",
                                          (Request("POST", ml.path(ml.MODELS, model.id, "_undeploy"),
                                                   missing_ok=True),)))
    for model in models or ():
        actions.append(delete("model", config.model.name, model.id, ml.path(ml.MODELS, model.id), ml.MODELS))
    if models is not None and not models:
        actions.append(TeardownAction("model", config.model.name, None, GONE))

    connectors = find(ml.CONNECTORS, config.connector.name)
    for connector in connectors or ():
        actions.append(delete("connector", config.connector.name, connector.id,
                              ml.path(ml.CONNECTORS, connector.id), ml.CONNECTORS))
    if connectors is not None and not connectors:
        actions.append(TeardownAction("connector", config.connector.name, None, GONE))

    if config.model.group:
        groups = find(ml.MODEL_GROUPS, config.model.group)
        ours = {m.id for m in models or ()} | leaving_models
        for group in groups or ():
            try:  # read by id; the models this teardown deletes do not count
                left = [m.id for m in _models_in_group(cluster, group.id) if m.id not in ours]
            except OsRerankError as exc:
                actions.append(failed("model group", config.model.group, group.id, exc, "cannot list its models: "))
                continue
            if left:
                actions.append(TeardownAction("model group", config.model.group, group.id, KEPT,
                                              f"still holds {len(left)} other model(s): {', '.join(left)}"))
            else:
                actions.append(delete("model group", config.model.group, group.id,
                                      ml.path(ml.MODEL_GROUPS, group.id), ml.MODEL_GROUPS))
        if groups is not None and not groups:
            actions.append(TeardownAction("model group", config.model.group, None, GONE))

    urls = [config.sagemaker.connector_url]
    if config.embedding is not None:
        from .dense import names

        urls.append(names(config).connector_url)
    actions.extend(_trusted_entries(cluster, urls, leaving | {c.id for c in connectors or ()}, failed))
    return TeardownPlan(tuple(actions))


def _dense_actions(cluster: Cluster, config: Config, keep_index: bool, delete: Callable[..., TeardownAction],
                   failed: Callable[..., TeardownAction]) -> tuple[list[TeardownAction], set[str], set[str]]:
    """The dense path's steps (dense.py), before the rerank resources: pipelines, index, then model and
    connector; and the ids of the embedding connectors and models they delete. Reads only."""
    from ..search.dense_query import eval_dense_index
    from .dense import DENSE_INDEX, EMBEDDING_CONNECTOR, EMBEDDING_MODEL, HYBRID_PIPELINE, INGEST_PIPELINE, names

    n = names(config)
    actions: list[TeardownAction] = []
    for name in (n.hybrid_rerank_pipeline, n.hybrid_pipeline):
        actions.append(delete(HYBRID_PIPELINE, name, name, f"/_search/pipeline/{name}"))
    for index in (n.index, eval_dense_index(config)):  # setup's, and the one eval embeds a corpus into
        if keep_index:
            actions.append(TeardownAction(DENSE_INDEX, index, index, KEPT, "--keep-index"))
        else:
            actions.append(delete(DENSE_INDEX, index, index, f"/{index}"))
    actions.append(delete(INGEST_PIPELINE, n.ingest_pipeline, n.ingest_pipeline,
                          f"/_ingest/pipeline/{n.ingest_pipeline}"))
    connectors: set[str] = set()
    models: set[str] = set()
    for kind, resource, name in ((ml.MODELS, EMBEDDING_MODEL, n.model), (ml.CONNECTORS, EMBEDDING_CONNECTOR,
                                                                         n.connector)):
        try:
            found = ml.find_by_name(cluster, kind, name)
        except OsRerankError as exc:
            actions.append(failed(resource, name, None, exc, "cannot list: "))
            continue
        if not found:
            actions.append(TeardownAction(resource, name, None, GONE))
        for item in found:
            if kind == ml.MODELS and item.model_state in ml.LOADED_STATES:
                actions.append(TeardownAction(resource, name, item.id, UNDEPLOYED, f"was {item.model_state}",
                                              (Request("POST", ml.path(ml.MODELS, item.id, "_undeploy"),
                                                       missing_ok=True),)))
            actions.append(delete(resource, name, item.id, ml.path(kind, item.id), kind))
            (connectors if kind == ml.CONNECTORS else models).add(item.id)
    return actions, connectors, models


def run_teardown(cluster: Cluster, plan: TeardownPlan, report: TeardownReport | None = None,
                 on_event: OnEvent | None = None) -> TeardownReport:
    """Send the plan's requests, step by step, each whatever became of the others; the outcome of each."""
    report = report if report is not None else TeardownReport()
    deleted: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> ids deleted
    released = True
    remaining: list[str] = []  # connectors whose delete failed: the trusted entry they need stays
    for action in plan.actions:
        if action.resource == "pipeline" and action.requests and not released:
            item = TeardownStep("pipeline", action.name, action.id, KEPT, "an index still defaults to it (see above)")
        elif action.resource == "setting" and action.requests and remaining:
            item = TeardownStep("setting", action.name, action.id, KEPT,
                                f"{action.detail} still admits connector(s) {', '.join(sorted(remaining))}")
        else:
            item = _run_step(cluster, action, report.notes)
        if action.resource == "default pipeline" and item.outcome == FAILED:
            released = False
        if action.resource in ("connector", "embedding connector") and item.outcome == FAILED and action.id:
            remaining.append(action.id)
        if action.kind is not None and item.outcome in (DELETED, GONE) and action.id is not None:
            deleted.setdefault((action.kind, action.name), []).append(action.id)
        report.steps.append(item)
        if on_event is not None:
            on_event(item.event())
    for (kind, name), ids in deleted.items():
        if not ml.await_search(cluster, kind, ml.name_query(name), absent=ids):
            report.notes.append(f"ML Commons' search still lists deleted {kind.replace('_', ' ')} "
                                f"{', '.join(ids)}; a command run at once may see them for a moment")
    return report


def _run_step(cluster: Cluster, action: TeardownAction, notes: list[str]) -> TeardownStep:
    if not action.requests:
        return TeardownStep(action.resource, action.name, action.id, action.outcome, action.detail)
    outcome = action.outcome
    try:
        for request in action.requests:
            response = cluster.request(request.method, request.shown_path, body=request.text(),
                                       content_type=request.content_type, missing_ok=request.missing_ok)
            if request.method == "DELETE" and response is None:
                outcome = GONE
    except ClusterError as exc:
        if action.resource == "setting" and exc.status == 403:  # an operator's role leaves settings to an admin
            entry = action.detail.removeprefix("entry ")
            notes.append(f"this user may not change cluster settings: an admin can remove {entry} from "
                         f"{action.name} (`os-rerank render --what settings` shows the entry)")
            return TeardownStep(action.resource, action.name, action.id, KEPT, action.detail)
        fix = f" (fix: {exc.fix})" if exc.fix else ""
        return TeardownStep(action.resource, action.name, action.id, FAILED, exc.message + fix)
    except OsRerankError as exc:
        fix = f" (fix: {exc.fix})" if exc.fix else ""
        return TeardownStep(action.resource, action.name, action.id, FAILED, exc.message + fix)
    return TeardownStep(action.resource, action.name, action.id, outcome, action.detail if outcome != GONE else "")


def _release_defaults(cluster: Cluster, pipeline: str, doomed: set[str],
                      failed: Callable[..., TeardownAction]) -> list[TeardownAction]:
    """Roll back every index (but those about to be deleted) whose default search pipeline is `pipeline`."""
    from .promote import indices_defaulting_to, plan_release

    try:
        indices = [i for i in indices_defaulting_to(cluster, pipeline) if i not in doomed]
    except OsRerankError as exc:
        return [failed("default pipeline", pipeline, None, exc)]
    out = []
    for index in indices:
        try:
            change, detail = plan_release(cluster, index, pipeline)
        except OsRerankError as exc:
            out.append(failed("default pipeline", index, None, exc))
            continue
        requests = tuple(Request(w.method, w.path, w.body) for w in change.writes)
        out.append(TeardownAction("default pipeline", index, None, RESTORED, detail, requests))
    return out


def _trusted_entries(cluster: Cluster, urls: list[str], leaving: set[str],
                     failed: Callable[..., TeardownAction]) -> list[TeardownAction]:
    """Remove the trusted-endpoint regexes setup added for the connector URLs, unless another connector uses one.

    setup adds exactly `url_regex(<connector URL>)` for each connector it makes (plan.py, dense.py), so those
    entries, and only they, are os-rerank's. The other entries, and private_ip_enabled (which other connectors may
    need), stay as they are. The connectors this teardown deletes (`leaving`) do not count. Each removal's PUT
    carries the list without the entries removed before it, so the last one leaves the list right.
    """
    from .render import MIN_VERSION
    from .state import read_settings

    try:
        regexes, explicit, _, scope = read_settings(cluster, MIN_VERSION)
    except OsRerankError as exc:
        return [failed("setting", ml.TRUSTED_REGEX, None, exc)]
    entries = [e for e in dict.fromkeys(ml.url_regex(url) for url in urls) if explicit and e in regexes]
    if not entries:
        return []
    connectors = [c for c in ml.find(cluster, ml.CONNECTORS, {"match_all": {}}) if c.id not in leaving]
    out: list[TeardownAction] = []
    current = list(regexes)
    for entry in entries:
        users = sorted({c.id for c in connectors
                        if any(ml.regex_admits(entry, str(a.get("url", ""))) for a in c.body.get("actions") or [])})
        if users:
            out.append(TeardownAction("setting", ml.TRUSTED_REGEX, None, KEPT,
                                      f"entry {entry} still admits connector(s) {', '.join(users)}"))
            continue
        current = [r for r in current if r != entry]
        body = {scope: {ml.TRUSTED_REGEX: current or None}}
        out.append(TeardownAction("setting", ml.TRUSTED_REGEX, None, DELETED, f"entry {entry}",
                                  (Request("PUT", "/_cluster/settings", body),)))
    return out


def _models_in_group(cluster: Cluster, group_id: str) -> tuple[ml.Found, ...]:
    return ml.models_using(cluster, "model_group_id", group_id)
