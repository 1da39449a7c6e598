"""Plan: compare what the config wants with what the cluster holds and return the actions `setup` takes. Pure.

`make_plan(desired, state)` returns frozen `Action`s in the order apply runs them: cluster settings, connector,
model group, model (register + deploy), index, documents, pipeline. Every action says why, including the ones
that change nothing ("connector exists and matches"), and carries the exact writes it makes (`requests`, wire.py):
bodies come from render, with a typed `Ref` for each id not known yet (shown as `(known after apply)`) and a
`Secret` for the credential (shown as ***). Apply fills those in and sends the requests; it renders nothing.
`Action` and `Plan` are plan_actions.py's; the live-versus-wanted comparisons are plan_compare.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import mlcommons as ml
from ..config import Config
from ..errors import ClusterError
from ..mlcommons import (
    CONNECTOR_ACCESS_CONTROL,
    DEPLOYED,
    LOADED_STATES,
    MODEL_ACCESS_CONTROL,
    PRIVATE_IP,
    PRIVATE_IP_SINCE,
    TRUSTED_REGEX,
    regex_admits,
    url_regex,
)
from ..wire import DEPLOY, UNDEPLOY, Ref, Request, fill
from .plan_actions import CREATE as CREATE  # the kinds, Action and Plan: importable from here as before
from .plan_actions import NO_CHANGE as NO_CHANGE
from .plan_actions import REPLACE as REPLACE
from .plan_actions import UPDATE as UPDATE
from .plan_actions import Action as Action
from .plan_actions import Plan as Plan
from .plan_compare import access_of as _access_of
from .plan_compare import access_text as _access_text
from .plan_compare import connector_differences as connector_differences
from .plan_compare import pipeline_fields as pipeline_fields
from .plan_compare import short as _short
from .render import (
    Version,
    bulk_body,
    connector_body,
    credential_placeholder,
    format_version,
    index_body,
    load_documents,
    model_body,
    model_group_access_body,
    model_group_body,
    pipeline_body,
)
from .state import ClusterState


@dataclass(frozen=True)
class Desired:
    """What the config asks for, rendered for one OpenSearch version (credentials redacted)."""

    version: Version
    connector_name: str
    connector_url: str
    endpoint_private: bool
    connector: dict[str, Any]
    model_name: str
    model: dict[str, Any]
    model_group: str | None
    model_group_body: dict[str, Any] | None
    index_name: str
    index: dict[str, Any]
    fields: dict[str, str]
    documents: tuple[dict[str, Any], ...]
    documents_text: str
    pipeline_name: str
    pipeline: dict[str, Any] = field(default_factory=dict)
    model_access: dict[str, Any] | None = None  # {"access_mode", "backend_roles"} for the model group
    model_group_access_body: dict[str, Any] | None = None


def desired_state(config: Config, version: Version, *, endpoint_private: bool) -> Desired:
    """The Desired for `config` on `version`; `endpoint_private` says whether the connector host is private."""
    docs = load_documents(config)
    return Desired(
        version=version,
        connector_name=config.connector.name,
        connector_url=config.sagemaker.connector_url,
        endpoint_private=endpoint_private,
        connector=connector_body(config, version=version, credential=credential_placeholder(config)),
        model_name=config.model.name,
        model=model_body(config, connector_id=Ref("connector"),
                         model_group_id=Ref("model group") if config.model.group else None),
        model_group=config.model.group,
        model_group_body=model_group_body(config) if config.model.group else None,
        index_name=config.index.name,
        index=index_body(config),
        fields=dict(config.index.fields),
        documents=tuple(docs),
        documents_text=bulk_body(config, docs),
        pipeline_name=config.pipeline.name,
        pipeline=pipeline_body(config, model_id=Ref("model")),
        model_access=({"access_mode": config.model.access.mode,
                       "backend_roles": list(config.model.access.backend_roles)}
                      if config.model.access is not None else None),
        model_group_access_body=model_group_access_body(config) if config.model.access is not None else None,
    )


# --- the plan ------------------------------------------------------------------------------------------------------


def make_plan(desired: Desired, state: ClusterState) -> Plan:
    """The actions that take `state` to `desired`, in apply order."""
    actions = [_settings(desired, state)]
    connector_action = _connector(desired, state)
    actions.append(connector_action)
    group_action = _model_group(desired, state)
    if group_action is not None:
        actions.append(group_action)
    model_action = _model(desired, state, connector_action, group_action)
    actions.append(model_action)
    actions.extend(_index(desired, state))
    actions.append(_pipeline(desired, state, model_action))
    return Plan(desired.version, tuple(actions))


def settings_body(desired: Desired) -> dict[str, Any]:
    """The PUT _cluster/settings body setup sends to a cluster that has none of the connector settings yet."""
    empty = ClusterState(desired.version, (), False, False if desired.version >= PRIVATE_IP_SINCE else None)
    return dict(_settings(desired, empty).body)


def _settings(desired: Desired, state: ClusterState) -> Action:
    url = desired.connector_url
    changes: dict[str, Any] = {}
    reasons: list[str] = []
    admitted = [rx for rx in state.trusted_regexes if regex_admits(rx, url)]
    if not admitted:
        ours = url_regex(url)
        changes[TRUSTED_REGEX] = [*state.trusted_regexes, ours]
        kept = f"keeping the {len(state.trusted_regexes)} existing entries" if state.trusted_regexes else "list empty"
        reasons.append(f"no trusted endpoint regex admits {url}; add {ours} ({kept})")
    else:
        reasons.append(f"trusted endpoint regex {admitted[0]} admits {url}")
    if desired.endpoint_private:
        if desired.version < PRIVATE_IP_SINCE:
            reasons.append(f"endpoint host is private; {format_version(desired.version)} has no {PRIVATE_IP} "
                           "(aws_sigv4 connectors are not IP-checked before 3.4)")
        elif state.private_ip_enabled:
            reasons.append(f"endpoint host is private and {PRIVATE_IP} is true")
        else:
            changes[PRIVATE_IP] = True
            reasons.append(f"endpoint host is private; set {PRIVATE_IP}: true")
    if desired.model_access is not None:
        if state.model_access_control:
            reasons.append(f"{MODEL_ACCESS_CONTROL} is true")
        else:
            changes[MODEL_ACCESS_CONTROL] = True
            reasons.append(f"model.access is set; set {MODEL_ACCESS_CONTROL}: true")
    if _access_of(desired.connector) is not None:
        if state.connector_access_control:
            reasons.append(f"{CONNECTOR_ACCESS_CONTROL} is true")
        else:
            changes[CONNECTOR_ACCESS_CONTROL] = True
            reasons.append(f"connector.access is set; set {CONNECTOR_ACCESS_CONTROL}: true")
    if not changes:
        return Action(NO_CHANGE, "settings", "cluster settings", "; ".join(reasons))
    if state.settings_scope == "transient":
        reasons.append("written as transient settings, since transient ones are set and would shadow persistent")
    body = {state.settings_scope: changes}
    return Action(UPDATE, "settings", "cluster settings", "; ".join(reasons), body=body,
                  requests=(Request("PUT", "/_cluster/settings", body),))


def _connector(desired: Desired, state: ClusterState) -> Action:
    name = desired.connector_name
    access = _access_of(desired.connector)
    if access is not None and state.plugins and "opensearch-security" not in state.plugins:
        raise ClusterError("connector.access needs the security plugin: ML Commons refuses access modes without it",
                           fix="remove connector.access from the config, or use a cluster with the security plugin")
    live = ml.only(state.connectors, ml.CONNECTORS, name)
    if live is None:
        why = "no connector with this name" + (f" (access {_access_text(access)})" if access else "")
        return Action(CREATE, "connector", name, why, body=desired.connector,
                      requests=(Request("POST", ml.create_path(ml.CONNECTORS), desired.connector,
                                        yields="connector"),))
    diffs = connector_differences(desired.connector, live.body)
    if not diffs:
        why = "connector exists and matches" + (f" (access {_access_text(access)})" if access else "")
        return Action(NO_CHANGE, "connector", name, why, id=live.id)
    loaded = tuple(m.id for m in state.models if m.connector_id == live.id and m.model_state in LOADED_STATES)
    reason = "connector differs: " + "; ".join(diffs)
    if loaded:
        reason += f" (undeploy {', '.join(loaded)}, update in place, deploy again)"
    # ML Commons refuses to update a connector a deployed model uses: undeploy, update, deploy again
    requests = (*(_undeploy(m) for m in loaded), Request("PUT", ml.path(ml.CONNECTORS, live.id), desired.connector),
                *(_deploy(m) for m in loaded))
    return Action(UPDATE, "connector", name, reason, body=desired.connector, id=live.id, related=loaded,
                  requests=requests)


def _model_group(desired: Desired, state: ClusterState) -> Action | None:
    if not desired.model_group:
        return None
    access = desired.model_access
    if access is not None and state.plugins and "opensearch-security" not in state.plugins:
        raise ClusterError("model.access needs the security plugin: ML Commons refuses access modes without it",
                           fix="remove model.access from the config, or use a cluster with the security plugin")
    live = ml.only(state.model_groups, ml.MODEL_GROUPS, desired.model_group)
    if live is None:
        why = "no model group with this name" + (f" (access {_access_text(access)})" if access else "")
        return Action(CREATE, "model group", desired.model_group, why, body=desired.model_group_body,
                      requests=(Request("POST", ml.create_path(ml.MODEL_GROUPS), desired.model_group_body,
                                        yields="model group"),))
    if access is not None:
        roles = [str(r) for r in live.body.get("backend_roles") or []]
        have = {"access_mode": live.body.get("access"), "backend_roles": roles}
        if (have["access_mode"], sorted(roles)) != (access["access_mode"], sorted(access["backend_roles"])):
            body = desired.model_group_access_body
            return Action(UPDATE, "model group", desired.model_group,
                          f"access differs: {_access_text(have)} -> {_access_text(access)}", body=body, id=live.id,
                          requests=(Request("PUT", ml.path(ml.MODEL_GROUPS, live.id), body),))
        return Action(NO_CHANGE, "model group", desired.model_group,
                      f"model group exists with access {_access_text(access)}", id=live.id)
    return Action(NO_CHANGE, "model group", desired.model_group, "model group exists", id=live.id)


def _model(desired: Desired, state: ClusterState, connector: Action, group: Action | None) -> Action:
    name = desired.model_name
    live = ml.only(state.models, ml.MODELS, name)
    known = {"connector": connector.id, "model group": group.id if group is not None else None}
    body = fill(desired.model, {k: v for k, v in known.items() if v})
    register = (Request("POST", ml.create_path(ml.MODELS), body, yields="model"), _deploy(Ref("model")))
    if live is None:
        return Action(CREATE, "model", name, "no model with this name; register it and deploy", body=body,
                      requests=register)
    old = (live.id,)
    # delete first, so a re-run never finds two models with our name
    delete = Request("DELETE", ml.path(ml.MODELS, live.id), missing_ok=True, target=live.id)
    replace = (_undeploy(live.id), delete, *register)
    if connector.kind == CREATE or live.connector_id != connector.id:
        why = f"model uses connector {live.connector_id}, not " + (
            "the new connector" if connector.kind == CREATE else str(connector.id))
        return Action(REPLACE, "model", name, why + "; register a new model, deploy it, delete the old one",
                      body=body, id=live.id, related=old, requests=replace)
    if group is not None and live.model_group_id != group.id:
        why = f"model is in model group {live.model_group_id}, not " + (
            "the new group" if group.kind == CREATE else str(group.id))
        return Action(REPLACE, "model", name, why + "; register a new model, deploy it, delete the old one",
                      body=body, id=live.id, related=old, requests=replace)
    if live.model_state != DEPLOYED:
        return Action(UPDATE, "model", name, f"model is {live.model_state}; deploy it", id=live.id,
                      requests=(_deploy(live.id),))
    return Action(NO_CHANGE, "model", name, f"model exists, uses connector {live.connector_id}, and is DEPLOYED",
                  id=live.id)


def _index(desired: Desired, state: ClusterState) -> list[Action]:
    name = desired.index_name
    n = len(desired.documents)
    bulk = (Request("POST", "/_bulk?refresh=true", desired.documents_text, content_type="application/x-ndjson"),)
    load = Action(CREATE, "documents", name, f"load {n} sample documents", body=desired.documents_text,
                  requests=bulk)
    create = Request("PUT", f"/{name}", desired.index)
    if state.index is None:
        return [Action(CREATE, "index", name, "no index with this name", body=desired.index, requests=(create,)),
                load]
    wrong = []
    for field_name, kind in desired.fields.items():
        got = (state.index.properties.get(field_name) or {}).get("type")
        if got != kind:
            wrong.append(f"{field_name} is {got or 'unmapped'}, want {kind}")
    if wrong:
        return [Action(REPLACE, "index", name, "mapping differs: " + "; ".join(wrong) + " (delete and recreate)",
                       body=desired.index, id=name,
                       requests=(Request("DELETE", f"/{name}", missing_ok=True), create)), load]
    index = Action(NO_CHANGE, "index", name, "index exists with the mapping", id=name)
    missing = [d["id"] for d in desired.documents if d["id"] not in state.index.documents]
    differ = [d["id"] for d in desired.documents if d["id"] in state.index.documents
              and state.index.documents[d["id"]] != {k: v for k, v in d.items() if k != "id"}]
    extra = len(set(state.index.documents) - {d["id"] for d in desired.documents})
    tail = f" (and {extra} other document(s) left alone)" if extra else ""
    if missing or differ:
        parts = [f"{len(missing)} missing" if missing else "", f"{len(differ)} differ" if differ else ""]
        why = f"reload {n} sample documents ({', '.join(p for p in parts if p)}){tail}"
        return [index, Action(UPDATE, "documents", name, why, body=desired.documents_text, requests=bulk)]
    return [index, Action(NO_CHANGE, "documents", name, f"all {n} sample documents present and equal{tail}")]


def _pipeline(desired: Desired, state: ClusterState, model: Action) -> Action:
    name = desired.pipeline_name
    model_id = model.id if model.kind in (NO_CHANGE, UPDATE) else None
    want = fill(desired.pipeline, {"model": model_id} if model_id else {})
    put = (Request("PUT", f"/_search/pipeline/{name}", want),)
    if state.pipeline is None:
        return Action(CREATE, "pipeline", name, "no search pipeline with this name", body=want, requests=put)
    live, wanted = pipeline_fields(state.pipeline), pipeline_fields(want)
    if model_id is None:
        return Action(UPDATE, "pipeline", name, "the model is new: point the pipeline at it", body=want, id=name,
                      requests=put)
    diffs = [f"{k} ({_short(live[k])} -> {_short(wanted[k])})" for k in wanted if live[k] != wanted[k]]
    if diffs:
        return Action(UPDATE, "pipeline", name, "pipeline differs: " + "; ".join(diffs), body=want, id=name,
                      requests=put)
    return Action(NO_CHANGE, "pipeline", name, f"pipeline exists and reranks with model {model_id}", id=name)


def _deploy(model_id: str) -> Request:
    return Request("POST", (ml.path(ml.MODELS) + "/", model_id, "/_deploy"), role=DEPLOY, target=model_id)


def _undeploy(model_id: str) -> Request:
    return Request("POST", ml.path(ml.MODELS, model_id, "_undeploy"), missing_ok=True, role=UNDEPLOY,
                   target=model_id)


