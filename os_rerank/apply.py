"""Apply a plan: the only module that writes to the cluster.

Bodies are produced by the same `render` functions `os-rerank render` prints, with the real ids and credential, and
sent as text, so what render shows is byte for byte what is sent. Progress flows through `on_event`. A failure
says which steps finished; running setup again reads the cluster by name and completes the rest.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import cluster as cluster_module
from . import dense
from . import mlcommons as ml
from .cluster import Cluster
from .config import Config
from .credentials import ConnectorCredential
from .errors import ClusterError, Interrupted, OsRerankError
from .permissions import explain_denied
from .plan import CREATE, REPLACE, UPDATE, Action, Plan
from .render import (
    Version,
    bulk_body,
    connector_body,
    dumps,
    index_body,
    load_documents,
    model_body,
    model_group_body,
    pipeline_body,
)

# Deploy polling: at most `timeout / POLL_SECONDS` GETs, POLL_SECONDS apart (tests lower it).
POLL_SECONDS = 1.0
DEPLOY_TIMEOUT_SECONDS = 120.0
# "The ML encryption master key has not been initialized yet. Please retry after waiting for 10 seconds."
MASTER_KEY_ATTEMPTS = 6
MASTER_KEY_WAIT_FACTOR = 4  # waits are RETRY_BASE_SECONDS * factor * 2**k: 2 s, 4 s, 8 s ... by default

SYMBOLS = {"create": "+", "update": "~", "deploy": "~", "undeploy": "~", "load": "~", "delete": "-", "retry": "!",
           "wait": ".", "unchanged": "="}


@dataclass(frozen=True)
class Event:
    """One thing apply did (or is waiting on); `line()` is how the CLI shows it."""

    kind: str
    resource: str
    name: str
    message: str
    id: str | None = None

    def line(self) -> str:
        return f"{SYMBOLS.get(self.kind, '*')} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "resource": self.resource, "name": self.name, "id": self.id,
                "message": self.message}


OnEvent = Callable[[Event], None]


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

    # --- plumbing ---------------------------------------------------------------------------------------------

    def emit(self, kind: str, action: Action, message: str, id: str | None = None) -> None:
        event = Event(kind, action.resource, action.name, message, id)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def write(self, action: Action, method: str, path: str, body: str | None = None,
              content_type: str = "application/json", missing_ok: bool = False) -> Any:
        """One write, retried while ML Commons' encryption master key is still being created."""
        for attempt in range(MASTER_KEY_ATTEMPTS):
            try:
                return self.cluster.request(method, path, body=body, content_type=content_type,
                                            missing_ok=missing_ok)
            except ClusterError as exc:
                if "master key" not in exc.message.lower() or attempt + 1 == MASTER_KEY_ATTEMPTS:
                    raise
                wait = cluster_module.RETRY_BASE_SECONDS * MASTER_KEY_WAIT_FACTOR * 2**attempt
                self.emit("retry", action, f"ML Commons' encryption master key is not ready yet; retrying in "
                          f"{wait:g}s")
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

    # --- actions ----------------------------------------------------------------------------------------------

    def apply(self, action: Action) -> None:
        if action.resource in dense.RESOURCES:  # the dense first stage's resources (config `embedding`)
            dense.apply_action(self, action)
            return
        handler = getattr(self, "_" + action.resource.replace(" ", "_"))
        handler(action)

    def _settings(self, action: Action) -> None:
        try:
            self.write(action, "PUT", "/_cluster/settings", dumps(action.body))
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
        body = dumps(connector_body(self.config, version=self.version, credential=self.credential.values))
        if action.kind == CREATE:
            response = self.write(action, "POST", "/_plugins/_ml/connectors/_create", body)
            self.result.connector_id = str(response["connector_id"])
            self.created.setdefault(ml.CONNECTORS, []).append(self.result.connector_id)
            self.emit("create", action, f"connector {action.name} created (id {self.result.connector_id})",
                      self.result.connector_id)
            return
        assert action.id is not None
        for model_id in action.related:  # ML Commons refuses to update a connector a deployed model uses
            self.undeploy(action, model_id)
        self.write(action, "PUT", f"/_plugins/_ml/connectors/{action.id}", body)
        self.emit("update", action, f"connector {action.name} updated in place (id {action.id})", action.id)
        for model_id in action.related:
            self.deploy(action, model_id)

    def _model_group(self, action: Action) -> None:
        if action.kind == UPDATE:  # model access control: the access mode or backend roles differ
            assert action.id is not None
            self.write(action, "PUT", ml.path(ml.MODEL_GROUPS, action.id), dumps(action.body))
            self.emit("update", action, f"model group {action.name} access updated (id {action.id})", action.id)
            return
        response = self.write(action, "POST", "/_plugins/_ml/model_groups/_register",
                              dumps(model_group_body(self.config)))
        self.result.model_group_id = str(response["model_group_id"])
        self.created.setdefault(ml.MODEL_GROUPS, []).append(self.result.model_group_id)
        self.emit("create", action, f"model group {action.name} created (id {self.result.model_group_id})",
                  self.result.model_group_id)

    def _model(self, action: Action) -> None:
        if action.kind == UPDATE:
            assert action.id is not None
            self.deploy(action, action.id)
            return
        if action.kind == REPLACE:  # delete first, so a re-run never finds two models with our name
            for old in action.related:
                self.undeploy(action, old)
                self.write(action, "DELETE", ml.path(ml.MODELS, old), missing_ok=True)
                self.removed.setdefault(ml.MODELS, []).append(old)
                self.emit("delete", action, f"model {action.name} deleted (old id {old})", old)
        assert self.result.connector_id is not None
        group = self.result.model_group_id if self.config.model.group else None
        body = dumps(model_body(self.config, connector_id=self.result.connector_id, model_group_id=group))
        response = self.write(action, "POST", "/_plugins/_ml/models/_register", body)
        model_id = response.get("model_id") or self.task_model_id(action, response.get("task_id"))
        self.result.model_id = str(model_id)
        self.created.setdefault(ml.MODELS, []).append(self.result.model_id)
        self.emit("create", action, f"model {action.name} registered (id {model_id})", self.result.model_id)
        self.deploy(action, self.result.model_id)

    def _index(self, action: Action) -> None:
        name = self.config.index.name
        if action.kind == REPLACE:
            self.write(action, "DELETE", f"/{name}", missing_ok=True)
            self.emit("delete", action, f"index {name} deleted (its mapping differed)", name)
        self.write(action, "PUT", f"/{name}", dumps(index_body(self.config)))
        self.emit("create", action, f"index {name} created", name)

    def _documents(self, action: Action) -> None:
        docs = load_documents(self.config)
        response = self.write(action, "POST", "/_bulk?refresh=true", bulk_body(self.config, docs),
                              content_type="application/x-ndjson")
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
        self.emit("load", action, f"{len(docs)} documents {verb} into {self.config.index.name}")

    def _pipeline(self, action: Action) -> None:
        assert self.result.model_id is not None
        name = self.config.pipeline.name
        body = dumps(pipeline_body(self.config, model_id=self.result.model_id))
        self.write(action, "PUT", f"/_search/pipeline/{name}", body)
        verb = "created" if action.kind == CREATE else "updated"
        self.emit(action.kind, action, f"search pipeline {name} {verb} (model {self.result.model_id})", name)

    # --- the model lifecycle ----------------------------------------------------------------------------------

    def task_model_id(self, action: Action, task_id: str | None) -> str:
        if not task_id:
            raise ClusterError("model register returned neither model_id nor task_id")
        for _ in range(self.polls()):
            task = self.cluster.request("GET", f"/_plugins/_ml/tasks/{task_id}") or {}
            if task.get("model_id"):
                return str(task["model_id"])
            if task.get("state") in ("FAILED", "CANCELLED", "COMPLETED_WITH_ERROR"):
                raise ClusterError(f"model registration task {task_id} {task.get('state')}: {task.get('error')}")
            self.cluster.sleep(POLL_SECONDS)
        raise ClusterError(f"model registration task {task_id} did not finish within {self.deploy_timeout:g}s",
                           fix="raise --timeout, or look at GET /_plugins/_ml/tasks/" + task_id)

    def polls(self) -> int:
        return max(1, int(self.deploy_timeout / POLL_SECONDS) if POLL_SECONDS > 0 else 1)

    def deploy(self, action: Action, model_id: str) -> None:
        self.write(action, "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
        state = "UNKNOWN"
        for _ in range(self.polls()):
            model = self.cluster.request("GET", f"/_plugins/_ml/models/{model_id}") or {}
            state = str(model.get("model_state", "UNKNOWN"))
            if state == ml.DEPLOYED:
                self.emit("deploy", action, f"model {model_id} deployed", model_id)
                return
            if state in ml.FAILED_STATES:
                raise ClusterError(
                    f"model {model_id} is {state}",
                    fix=f"look at GET /_plugins/_ml/models/{model_id} and the cluster log; for remote models this is "
                    "usually a circuit breaker (2.12-2.14) or a connector the node cannot use; then run setup again",
                )
            self.cluster.sleep(POLL_SECONDS)
        raise ClusterError(f"model {model_id} is still {state} after {self.deploy_timeout:g}s",
                           fix="wait and run setup again, or raise --timeout")

    def undeploy(self, action: Action, model_id: str) -> None:
        self.write(action, "POST", f"/_plugins/_ml/models/{model_id}/_undeploy", missing_ok=True)
        self.emit("undeploy", action, f"model {model_id} undeployed", model_id)
