"""Apply a plan: every write `setup` makes goes through here.

The other writers are plans of their own or say why they are not: teardown runs its plan (teardown.run_teardown,
`teardown --dry-run` prints it), rotate-credentials sends undeploy -> credential update -> deploy through
mlcommons' shared lifecycle, and eval loads its corpus index (search/eval.py, search/dense_query.py) outside any
plan, since that index is eval's scratch space, not a resource setup manages.

Apply sends the requests the plan carries (wire.py), and only those: it fills in the ids earlier steps created and
the credential, and sends each body as text. It renders nothing, so `os-rerank plan --json` is what is sent
(tests/scenarios/test_plan_exact.py checks it on the double and on real nodes). Progress flows through
`on_event`. A failure says which steps finished; running setup again reads the cluster by name and completes the
rest.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .. import cluster as cluster_module
from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..credentials import ConnectorCredential
from ..errors import ClusterError, Interrupted, OsRerankError
from ..events import Event, OnEvent  # re-exported: apply's events are the one event type
from ..search.dense_query import raise_bulk_errors
from ..wire import DEPLOY, UNDEPLOY, Request
from . import dense
from .permissions import explain_denied
from .plan import CREATE, REPLACE, Action, Plan
from .render import Version, dumps

# Deploy polling: at most `timeout / POLL_SECONDS` GETs, POLL_SECONDS apart (tests lower it).
POLL_SECONDS = ml.DEPLOY_POLL_SECONDS
DEPLOY_TIMEOUT_SECONDS = ml.DEPLOY_TIMEOUT_SECONDS
# "The ML encryption master key has not been initialized yet. Please retry after waiting for 10 seconds."
MASTER_KEY_ATTEMPTS = 6
MASTER_KEY_WAIT_FACTOR = 4  # waits are RETRY_BASE_SECONDS * factor * 2**k: 2 s, 4 s, 8 s ... by default
# ML Commons' refusal to update a connector that deployed models use ("... please undeploy the models first").
STILL_IN_USE = "models are still using this connector"


@dataclass
class ApplyResult:
    """What apply did and the ids of the resources setup manages."""

    events: list[Event] = field(default_factory=list)
    connector_id: str | None = None
    model_group_id: str | None = None
    model_id: str | None = None
    # The dense path's ids (dense.py): "connector" and "model" of the embedding model.
    dense_ids: dict[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> list[Event]:
        return [e for e in self.events if e.kind not in ("retry", "wait", "unchanged")]


def apply_plan(
    plan: Plan,
    cluster: Cluster,
    config: Config,
    credential: ConnectorCredential,
    on_event: OnEvent | None = None,
    *,
    deploy_timeout: float = DEPLOY_TIMEOUT_SECONDS,
) -> ApplyResult:
    """Carry out `plan` on `cluster`; raises the failing step's error, rewritten to say what finished."""
    run = _Run(cluster, config, credential, plan.version, on_event, deploy_timeout)
    for i, action in enumerate(plan.actions):
        run.note_ids(action)
        if not action.changes:
            run.emit("unchanged", action, f"{action.resource} {action.name}: {action.reason}", action.id)
            continue
        try:
            run.apply(action)
        except OsRerankError as exc:
            with contextlib.suppress(OsRerankError):  # best effort: the cluster may be what failed
                run.settle()
            raise _half_done(exc, action, run.result.steps, plan.actions[i + 1:]) from None
        except KeyboardInterrupt:
            raise _half_done(Interrupted("interrupted"), action, run.result.steps, plan.actions[i + 1:]) from None
        except Exception as exc:  # a bug or an unmapped library error: still say what finished
            unexpected = OsRerankError(f"unexpected {type(exc).__name__}: {exc}")
            raise _half_done(unexpected, action, run.result.steps, plan.actions[i + 1:]) from exc
    run.settle()
    return run.result


def _half_done(exc: OsRerankError, action: Action, done: list[Event], rest: tuple[Action, ...]) -> OsRerankError:
    pending = [f"{a.resource} {a.name}" for a in rest if a.changes]
    lines = [f"setup stopped at {action.resource} {action.name!r}: {exc.message}"]
    lines.append("finished before it stopped: " + ("; ".join(e.message for e in done) if done else "nothing"))
    lines.append("not done: " + "; ".join([f"{action.resource} {action.name}", *pending]))
    out = copy.copy(exc)
    out.message = "\n".join(lines)
    out.args = (out.message,)
    again = "run `os-rerank setup` again: it finds what exists by name and completes the rest"
    out.fix = f"{exc.fix}; then {again}" if exc.fix else again
    return out


class _Run:
    def __init__(self, cluster: Cluster, config: Config, credential: ConnectorCredential, version: Version,
                 on_event: OnEvent | None, deploy_timeout: float) -> None:
        self.cluster = cluster
        self.config = config
        self.credential = credential
        self.version = version
        self.on_event = on_event
        self.deploy_timeout = deploy_timeout
        self.result = ApplyResult()
        # ML Commons ids this run created and deleted, by kind: `settle` waits until search agrees.
        self.created: dict[str, list[str]] = {}
        self.removed: dict[str, list[str]] = {}
        self.undeployed: list[str] = []  # models this run undeployed: a connector update may briefly still see them
        # Ids created by requests of resource kinds without a field in ApplyResult (see `apply`), by `yields`.
        self.ids: dict[str, str] = {}

    # --- plumbing ---------------------------------------------------------------------------------------------

    def emit(self, kind: str, action: Action, message: str, id: str | None = None) -> None:
        event = Event(kind, action.resource, action.name, message, id)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def write(self, action: Action, method: str, path: str, body: str | None = None,
              content_type: str = "application/json", missing_ok: bool = False) -> Any:
        """One write, retried while ML Commons' encryption master key is still being created, and while a connector
        update still sees the models this run just undeployed (docs/ml-commons.md#connectors)."""
        for attempt in range(MASTER_KEY_ATTEMPTS):
            try:
                return self.cluster.request(method, path, body=body, content_type=content_type,
                                            missing_ok=missing_ok)
            except ClusterError as exc:
                text = exc.message.lower()
                if attempt + 1 == MASTER_KEY_ATTEMPTS:
                    raise
                if "master key" in text:
                    wait = cluster_module.RETRY_BASE_SECONDS * MASTER_KEY_WAIT_FACTOR * 2**attempt
                    self.emit("retry", action, f"ML Commons' encryption master key is not ready yet; retrying in "
                              f"{wait:g}s")
                elif STILL_IN_USE in text and self.undeployed:
                    # The update's check reads the node's in-memory list of deployed models, which an undeploy
                    # that has answered may not have cleared yet (seen on 2.19.1 right after the undeploy).
                    wait = cluster_module.RETRY_BASE_SECONDS * 2**attempt
                    self.emit("retry", action, f"ML Commons still counts the undeployed model(s) as using the "
                              f"connector; retrying in {wait:g}s")
                else:
                    raise
                self.cluster.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def settle(self) -> None:
        """Wait until ML Commons' search shows what this run created and no longer what it deleted.

        Its searches lag writes by up to a second (mlcommons.py); without this, a `teardown` or `setup` run right
        after would miss a new resource, or find a deleted one.
        """
        names = {ml.CONNECTORS: self.config.connector.name, ml.MODEL_GROUPS: self.config.model.group,
                 ml.MODELS: self.config.model.name}
        for kind in ml.KINDS:
            present, absent = self.created.get(kind, []), self.removed.get(kind, [])
            name = names[kind]
            if (present or absent) and name and not ml.await_search(self.cluster, kind, ml.name_query(name),
                                                                    present=present, absent=absent):
                event = Event("wait", kind, name, f"ML Commons' search does not show every change to {kind} yet; a "
                              "command run at once may not see it")
                self.result.events.append(event)
                if self.on_event is not None:
                    self.on_event(event)
        if self.config.embedding is not None:
            dense.settle(self.cluster, self.config, self.created)

    def note_ids(self, action: Action) -> None:
        if action.id is None or action.kind in (CREATE, REPLACE):
            return
        if action.resource == "connector":
            self.result.connector_id = action.id
        elif action.resource == "model group":
            self.result.model_group_id = action.id
        elif action.resource == "model":
            self.result.model_id = action.id
        elif action.resource in (dense.EMBEDDING_CONNECTOR, dense.EMBEDDING_MODEL):
            self.result.dense_ids["connector" if action.resource == dense.EMBEDDING_CONNECTOR else "model"] = action.id

    def values(self) -> dict[str, Any]:
        """What the plan's placeholders stand for: the ids known so far and the credential."""
        ids = {"connector": self.result.connector_id, "model group": self.result.model_group_id,
               "model": self.result.model_id}
        return {**self.ids, **{k: v for k, v in ids.items() if v is not None}, "credential": self.credential.values}

    def send(self, action: Action, request: Request) -> Any:
        """The planned `request`, filled in and sent; its response."""
        filled = request.filled(self.values())
        assert isinstance(filled.path, str)
        return self.write(action, filled.method, filled.path, filled.text(), filled.content_type,
                          missing_ok=filled.missing_ok)

    def target(self, request: Request) -> str:
        """The model id a planned deploy or undeploy acts on."""
        return str(request.filled(self.values()).target)

    # --- actions ----------------------------------------------------------------------------------------------

    def apply(self, action: Action) -> None:
        if action.resource in dense.RESOURCES:  # the dense first stage's resources (config `embedding`)
            self._dense(action)
            return
        handler = getattr(self, "_" + action.resource.replace(" ", "_"), None)
        if handler is None:  # a resource kind with no handler of its own: its requests, in order
            for request in action.requests:
                if self.lifecycle(action, request):
                    continue
                response = self.send(action, request)
                if request.yields:  # ML Commons answers a create with <kind>_id (task-based registers aside)
                    found = next((v for k, v in (response or {}).items() if k.endswith("_id") and k != "task_id"),
                                 None)
                    if found is None:
                        raise ClusterError(f"{request.method} {request.shown_path} returned no id")
                    self.ids[request.yields] = str(found)
            self.emit(action.kind, action, f"{action.resource} {action.name}: {action.kind}", action.id)
            return
        handler(action)

    def lifecycle(self, action: Action, request: Request) -> bool:
        """Run `request` if it is a planned deploy or undeploy (apply's model lifecycle); False if it is not one."""
        if request.role == DEPLOY:
            self.deploy(action, self.target(request))
        elif request.role == UNDEPLOY:
            self.undeploy(action, self.target(request))
        else:
            return False
        return True

    def _dense(self, action: Action) -> None:
        """A dense-path action (dense.py): its planned requests in order, each followed by the event dense names."""
        for request in action.requests:  # an update of a connector in use: undeploy, update, deploy again
            if self.lifecycle(action, request):
                continue
            response = self.send(action, request)
            if request.yields:  # an embedding connector or model: later requests name it by Ref
                key, ml_kind = dense.YIELDS[request.yields]
                new = str(response.get(f"{key}_id") or ml.task_model_id(
                    self.cluster, response.get("task_id"), timeout=self.deploy_timeout, poll=POLL_SECONDS))
                self.ids[request.yields] = self.result.dense_ids[key] = new
                self.created.setdefault("dense:" + ml_kind, []).append(new)
            elif action.resource == dense.DENSE_DOCUMENTS:
                raise_bulk_errors(response, action.name)
            kind, message, shown = dense.applied_event(self.config, action, request, self.result.dense_ids)
            self.emit(kind, action, message, shown)

    def _settings(self, action: Action) -> None:
        try:
            self.send(action, action.requests[0])
        except ClusterError as exc:
            if exc.status != 403:
                raise
            # Settings are an admin's step (the operator's role leaves them out), and the first write of a plan.
            raise ClusterError(
                f"the connector settings need an admin ({action.reason}); this user may not change cluster settings",
                status=403, fix=f"an admin applies PUT /_cluster/settings {json.dumps(action.body)} (also shown by "
                "`os-rerank plan --json` and, on an empty list, `os-rerank render --what settings`)") from None
        for key, value in next(iter(action.body.values())).items():
            shown = f"{len(value)} entries (added {value[-1]})" if isinstance(value, list) else dumps(value)
            self.emit("update", action, f"cluster setting {key} = {shown}")

    def _connector(self, action: Action) -> None:
        for request in action.requests:  # an update of a connector in use: undeploy, update, deploy again
            if self.lifecycle(action, request):
                continue
            response = self.send(action, request)
            if request.yields:
                self.result.connector_id = str(response["connector_id"])
                self.created.setdefault(ml.CONNECTORS, []).append(self.result.connector_id)
                self.emit("create", action, f"connector {action.name} created (id {self.result.connector_id})",
                          self.result.connector_id)
            else:
                self.emit("update", action, f"connector {action.name} updated in place (id {action.id})", action.id)

    def _model_group(self, action: Action) -> None:
        request = action.requests[0]
        response = self.send(action, request)
        if not request.yields:  # model access control: the access mode or backend roles differ
            self.emit("update", action, f"model group {action.name} access updated (id {action.id})", action.id)
            return
        self.result.model_group_id = str(response["model_group_id"])
        self.created.setdefault(ml.MODEL_GROUPS, []).append(self.result.model_group_id)
        self.emit("create", action, f"model group {action.name} created (id {self.result.model_group_id})",
                  self.result.model_group_id)

    def _model(self, action: Action) -> None:
        for request in action.requests:  # a replace deletes the old model first: a re-run never finds two
            if self.lifecycle(action, request):
                continue
            response = self.send(action, request)
            if request.method == "DELETE":
                old = self.target(request)
                self.removed.setdefault(ml.MODELS, []).append(old)
                self.emit("delete", action, f"model {action.name} deleted (old id {old})", old)
                continue
            model_id = response.get("model_id") or ml.task_model_id(
                self.cluster, response.get("task_id"), timeout=self.deploy_timeout, poll=POLL_SECONDS)
            self.result.model_id = str(model_id)
            self.created.setdefault(ml.MODELS, []).append(self.result.model_id)
            self.emit("create", action, f"model {action.name} registered (id {model_id})", self.result.model_id)

    def _index(self, action: Action) -> None:
        name = action.name
        for request in action.requests:
            self.send(action, request)
            if request.method == "DELETE":
                self.emit("delete", action, f"index {name} deleted (its mapping differed)", name)
            else:
                self.emit("create", action, f"index {name} created", name)

    def _documents(self, action: Action) -> None:
        response = self.send(action, action.requests[0])
        if isinstance(response, dict) and response.get("errors"):
            failed = [next(iter(item.values())) for item in response.get("items", [])]
            failed = [f for f in failed if isinstance(f, dict) and f.get("error")]
            first = failed[0] if failed else {}
            error = first.get("error") or {}
            error = error if isinstance(error, dict) else {}
            fix = "check the documents match index.fields (a keyword field takes short strings)"
            if error.get("type") == "security_exception":  # a bulk reports a missing permission per document
                fix = explain_denied("POST", f"/{self.config.index.name}", str(error.get("reason", "")))
            raise ClusterError(f"bulk load into {self.config.index.name}: {len(failed)} document(s) failed; first: "
                               f"{first.get('_id')}: {dumps(first.get('error'))}", fix=fix, status=first.get("status"))
        verb = "loaded" if action.kind == CREATE else "reloaded"
        count = str(action.requests[0].body).count("\n") // 2  # two NDJSON lines a document; JSON escapes "\n"
        self.emit("load", action, f"{count} documents {verb} into {action.name}")

    def _pipeline(self, action: Action) -> None:
        assert self.result.model_id is not None
        name = action.name
        self.send(action, action.requests[0])
        verb = "created" if action.kind == CREATE else "updated"
        self.emit(action.kind, action, f"search pipeline {name} {verb} (model {self.result.model_id})", name)

    # --- the model lifecycle ----------------------------------------------------------------------------------

    def deploy(self, action: Action, model_id: str) -> None:
        self.write(action, "POST", ml.path(ml.MODELS, model_id, "_deploy"))
        ml.wait_deployed(self.cluster, model_id, timeout=self.deploy_timeout, poll=POLL_SECONDS)
        self.emit("deploy", action, f"model {model_id} deployed", model_id)

    def undeploy(self, action: Action, model_id: str) -> None:
        self.write(action, "POST", ml.path(ml.MODELS, model_id, "_undeploy"), missing_ok=True)
        self.undeployed.append(model_id)
        self.emit("undeploy", action, f"model {model_id} undeployed", model_id)
