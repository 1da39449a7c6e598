"""The dense first stage, provisioned beside the rerank: the names, state, plan and status pieces of `embedding`.

When the config has an `embedding` section, setup also makes: an embedding connector (one of the contracts in
embedding_contracts.py) and its model (register + deploy, in the same model group), an ingest pipeline with
neural-search's `text_embedding` processor, a k-NN index (`index.knn`, a `knn_vector` field with Lucene HNSW and
cosine similarity: the k-NN build served here has no native engines) whose default pipeline is that ingest
pipeline, the sample documents ingested through it, and two search pipelines for the `hybrid` query: one that
normalises (min-max) and combines (weighted arithmetic mean) the BM25 and neural scores, and one that does the
same and then reranks with the rerank model.

Facts this rests on, seen on a 2.19.1 node (tests/scenarios/test_dense_scenarios.py runs them on one):
- `POST <ML Commons>/_predict/text_embedding/<model_id>` with `{"text_docs": [...]}` reaches a remote model
  through its pre-process script; `POST <ML Commons>/models/<id>/_predict` with the same body does not (it is
  read as a remote-inference input without a script).
- a `hybrid` query without the normalization processor returns its internal marker scores; it always runs through
  a pipeline here.
- the `text_embedding` processor calls the model once per document in a bulk request.
- with `plugins.ml_commons.safe_delete_model` on, ML Commons refuses to delete a model that an ingest or search
  pipeline still names (DeleteModelTransportAction, 2.19.1.0; off by default): teardown removes the pipelines
  first, and the dense resources before the rerank ones (the hybrid pipeline names the rerank model; the model
  group is shared).

A dimension that differs from the existing index's is a plan error: the index is never rebuilt silently.

Like the rerank path's, the plan carries the exact requests (wire.py): bodies from dense_render.py with a `Ref` for
each id created during the run ("embedding connector", "embedding model", and the rerank "model group" and
"model") and a `Secret` for the credential; apply sends them and nothing else. The first stage queries and the
endpoint probe are dense_query.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError
from ..search.dense_query import (
    probe_dimension,
)
from ..wire import Ref, Request
from .dense_render import (
    ENGINE,
    FIRST_STAGES,
    SPACE,
    connector_body,
    dense_index_body,
    documents_text,
    embedding_model_body,
    hybrid_pipeline_body,
    ingest_pipeline_body,
    names,
)
from .render import Version, credential_placeholder, load_documents

if TYPE_CHECKING:
    from .plan import Action, Plan
    from .state import ClusterState

# Plan resources of the dense path, in apply order (apply.py sends their planned requests).
EMBEDDING_CONNECTOR = "embedding connector"
EMBEDDING_MODEL = "embedding model"
INGEST_PIPELINE = "ingest pipeline"
DENSE_INDEX = "dense index"
DENSE_DOCUMENTS = "dense documents"
HYBRID_PIPELINE = "hybrid pipeline"
RESOURCES = (EMBEDDING_CONNECTOR, EMBEDDING_MODEL, INGEST_PIPELINE, DENSE_INDEX, DENSE_DOCUMENTS, HYBRID_PIPELINE)
# The resources whose create yields an id (a Ref elsewhere in the plan): its key in ApplyResult.dense_ids and its
# ML Commons kind.
YIELDS = {EMBEDDING_CONNECTOR: ("connector", ml.CONNECTORS), EMBEDDING_MODEL: ("model", ml.MODELS)}


# --- state (GETs and read-only searches) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DenseIndex:
    properties: dict[str, Any]
    settings: dict[str, Any]
    documents: dict[str, dict[str, Any]]  # id -> _source without the vector


@dataclass(frozen=True)
class DenseState:
    connectors: tuple[ml.Found, ...]
    models: tuple[ml.Found, ...]
    ingest_pipeline: dict[str, Any] | None
    index: DenseIndex | None
    hybrid: dict[str, Any] | None
    hybrid_rerank: dict[str, Any] | None


def read_dense_index(cluster: Cluster, config: Config) -> DenseIndex | None:
    n = names(config)
    info = cluster.request("GET", f"/{n.index}", missing_ok=True)
    if not info:
        return None
    entry: dict[str, Any] = info.get(n.index) or next(iter(info.values()), {})
    properties = ((entry.get("mappings") or {}).get("properties")) or {}
    settings = ((entry.get("settings") or {}).get("index")) or {}
    result = cluster.request("POST", f"/{n.index}/_search", params={"search_pipeline": "_none"},
                             body={"query": {"match_all": {}}, "size": 10000,
                                   "_source": {"excludes": [n.vector_field]}})
    docs = {str(h.get("_id")): dict(h.get("_source") or {})
            for h in ((result or {}).get("hits") or {}).get("hits") or []}
    return DenseIndex(dict(properties), dict(settings), docs)


def _get_pipeline(cluster: Cluster, path: str, name: str) -> dict[str, Any] | None:
    result = cluster.request("GET", f"{path}/{name}", missing_ok=True)
    body = (result or {}).get(name)
    return dict(body) if isinstance(body, dict) else None


def read_dense_state(cluster: Cluster, config: Config) -> DenseState:
    n = names(config)
    return DenseState(
        connectors=ml.find_by_name(cluster, ml.CONNECTORS, n.connector),
        models=ml.find_by_name(cluster, ml.MODELS, n.model),
        ingest_pipeline=_get_pipeline(cluster, "/_ingest/pipeline", n.ingest_pipeline),
        index=read_dense_index(cluster, config),
        hybrid=_get_pipeline(cluster, "/_search/pipeline", n.hybrid_pipeline),
        hybrid_rerank=_get_pipeline(cluster, "/_search/pipeline", n.hybrid_rerank_pipeline),
    )


# --- the plan --------------------------------------------------------------------------------------------------------


def extend_plan(plan: Plan, cluster: Cluster, config: Config, state: ClusterState, *,
                dimension: int | None = None) -> Plan:
    """`plan` with the dense path's actions appended, and its settings action also admitting the embedding URL."""
    from .plan import Plan

    dense_state = read_dense_state(cluster, config)
    dimension = dimension if dimension is not None else probe_dimension(config)
    actions = [admit_url(a, state, names(config).connector_url) if a.resource == "settings" else a
               for a in plan.actions]
    rerank_model, group = plan.action("model"), plan.action("model group")
    group_id: str | None = None
    if config.model.group:
        group_id = group.id if group is not None and group.id and group.kind != "create" else Ref("model group")
    actions.extend(dense_actions(config, plan.version, dense_state, dimension, rerank_model, group_id))
    return Plan(plan.version, tuple(actions))


def admit_url(settings: Action, state: ClusterState, url: str) -> Action:
    """The settings action, also adding the trusted-endpoint regex of `url` when no entry admits it yet."""
    from .plan import UPDATE, Action

    scope, changes = next(iter(settings.body.items())) if settings.body else (state.settings_scope, {})
    regexes = list(changes.get(ml.TRUSTED_REGEX) or state.trusted_regexes)
    if any(ml.regex_admits(rx, url) for rx in regexes):
        return settings
    ours = ml.url_regex(url)
    body = {scope: {**changes, ml.TRUSTED_REGEX: [*regexes, ours]}}
    reason = f"{settings.reason}; no trusted endpoint regex admits the embedding connector's {url}; add {ours}"
    return Action(UPDATE, settings.resource, settings.name, reason, body=body, id=settings.id,
                  requests=(Request("PUT", "/_cluster/settings", body),))


def dense_actions(config: Config, version: Version, state: DenseState, dimension: int,
                  rerank_model: Action | None, model_group_id: str | None = None) -> list[Action]:
    """The dense path's actions in apply order, each with the requests it sends. ClusterError when the existing
    k-NN index cannot take them. `model_group_id` is the rerank model group's id (or its Ref when it is new)."""
    from .plan import CREATE, NO_CHANGE, REPLACE, UPDATE

    connector = _connector(config, version, state)
    model = _model(config, state, connector, model_group_id)
    new_model = model.kind in (CREATE, REPLACE)
    model_id = Ref(EMBEDDING_MODEL) if new_model else str(model.id)
    ingest = _ingest(config, state, model_id, new_model)
    index, documents = _index(config, state, dimension, changed=new_model or ingest.kind != NO_CHANGE)
    rerank_id = None
    if rerank_model is not None and rerank_model.kind in (NO_CHANGE, UPDATE):
        rerank_id = rerank_model.id
    return [connector, model, ingest, index, documents, *_hybrid(config, state, rerank_id)]


def _connector(config: Config, version: Version, state: DenseState) -> Action:
    from .plan import CREATE, NO_CHANGE, UPDATE, Action, _deploy, _undeploy, connector_differences

    n = names(config)
    want = connector_body(config, version=version, credential=credential_placeholder(config))
    live = ml.only(state.connectors, ml.CONNECTORS, n.connector)
    if live is None:
        return Action(CREATE, EMBEDDING_CONNECTOR, n.connector, "no embedding connector with this name", body=want,
                      requests=(Request("POST", ml.create_path(ml.CONNECTORS), want, yields=EMBEDDING_CONNECTOR),))
    diffs = connector_differences(want, live.body)
    if not diffs:
        return Action(NO_CHANGE, EMBEDDING_CONNECTOR, n.connector, "embedding connector exists and matches",
                      id=live.id)
    # ML Commons refuses to update a connector a deployed model uses: undeploy, update, deploy again
    loaded = tuple(m.id for m in state.models if m.connector_id == live.id and m.model_state in ml.LOADED_STATES)
    requests = (*(_undeploy(m) for m in loaded), Request("PUT", ml.path(ml.CONNECTORS, live.id), want),
                *(_deploy(m) for m in loaded))
    return Action(UPDATE, EMBEDDING_CONNECTOR, n.connector, "embedding connector differs: " + "; ".join(diffs),
                  body=want, id=live.id, related=loaded, requests=requests)


def _model(config: Config, state: DenseState, connector: Action, model_group_id: str | None) -> Action:
    from .plan import CREATE, NO_CHANGE, REPLACE, UPDATE, Action, _deploy, _undeploy

    n = names(config)
    live = ml.only(state.models, ml.MODELS, n.model)
    connector_id = connector.id if connector.kind != CREATE and connector.id else Ref(EMBEDDING_CONNECTOR)
    body = embedding_model_body(config, connector_id=connector_id, model_group_id=model_group_id)
    register = (Request("POST", ml.create_path(ml.MODELS), body, yields=EMBEDDING_MODEL),
                _deploy(Ref(EMBEDDING_MODEL)))
    if live is None:
        return Action(CREATE, EMBEDDING_MODEL, n.model, "no embedding model with this name; register it and deploy",
                      body=body, requests=register)
    moved = isinstance(model_group_id, str) and live.model_group_id != model_group_id
    if connector.kind == CREATE or live.connector_id != connector.id or isinstance(model_group_id, Ref) or moved:
        why = (f"embedding model uses connector {live.connector_id}" if live.connector_id != connector.id or
               connector.kind == CREATE else f"embedding model is in model group {live.model_group_id}")
        # delete first, so a re-run never finds two models with our name
        delete = Request("DELETE", ml.path(ml.MODELS, live.id), missing_ok=True, target=live.id)
        return Action(REPLACE, EMBEDDING_MODEL, n.model, f"{why}; undeploy and delete it, register a new one and "
                      "deploy it", body=body, id=live.id, related=(live.id,),
                      requests=(_undeploy(live.id), delete, *register))
    if live.model_state != ml.DEPLOYED:
        return Action(UPDATE, EMBEDDING_MODEL, n.model, f"embedding model is {live.model_state}; deploy it",
                      id=live.id, requests=(_deploy(live.id),))
    return Action(NO_CHANGE, EMBEDDING_MODEL, n.model, "embedding model exists and is DEPLOYED", id=live.id)


def _ingest(config: Config, state: DenseState, model_id: str, new_model: bool) -> Action:
    from .plan import CREATE, NO_CHANGE, UPDATE, Action

    n = names(config)
    want = ingest_pipeline_body(config, model_id=model_id)
    put = (Request("PUT", f"/_ingest/pipeline/{n.ingest_pipeline}", want),)
    if state.ingest_pipeline is None:
        return Action(CREATE, INGEST_PIPELINE, n.ingest_pipeline, "no ingest pipeline with this name", body=want,
                      requests=put)
    if new_model or state.ingest_pipeline != want:
        return Action(UPDATE, INGEST_PIPELINE, n.ingest_pipeline, "ingest pipeline differs (or the embedding "
                      "model is new): embed with " + model_id, body=want, id=n.ingest_pipeline, requests=put)
    return Action(NO_CHANGE, INGEST_PIPELINE, n.ingest_pipeline, f"ingest pipeline embeds with {model_id}",
                  id=n.ingest_pipeline)


def _index(config: Config, state: DenseState, dimension: int, *, changed: bool) -> tuple[Action, Action]:
    """The k-NN index and its documents; `changed`: the embedding model or ingest pipeline changes (re-ingest)."""
    from .plan import CREATE, NO_CHANGE, UPDATE, Action

    n = names(config)
    docs = load_documents(config)
    text = documents_text(config)
    bulk = (Request("POST", "/_bulk?refresh=true", text, content_type="application/x-ndjson"),)
    if state.index is None:
        want = dense_index_body(config, dimension)
        return (Action(CREATE, DENSE_INDEX, n.index, f"no k-NN index with this name (dimension {dimension})",
                       body=want, requests=(Request("PUT", f"/{n.index}", want),)),
                Action(CREATE, DENSE_DOCUMENTS, n.index, f"ingest {len(docs)} sample documents through "
                       f"{n.ingest_pipeline}", body=text, requests=bulk))
    _check_index(config, state.index, dimension)
    index = Action(NO_CHANGE, DENSE_INDEX, n.index, f"k-NN index exists: {n.vector_field} is knn_vector "
                   f"({dimension}, {ENGINE} HNSW)", id=n.index)
    want_docs = {str(d["id"]): {k: v for k, v in d.items() if k != "id"} for d in docs}
    missing = [i for i in want_docs if i not in state.index.documents]
    differ = [i for i in want_docs if i in state.index.documents and state.index.documents[i] != want_docs[i]]
    if missing or differ or changed:
        why = (f"{len(missing)} missing, {len(differ)} differ" if missing or differ
               else "the embedding model or ingest pipeline changed")
        return index, Action(UPDATE, DENSE_DOCUMENTS, n.index, f"re-ingest {len(docs)} sample documents ({why})",
                             body=text, requests=bulk)
    return index, Action(NO_CHANGE, DENSE_DOCUMENTS, n.index, f"all {len(docs)} sample documents present and "
                         "embedded")


def _hybrid(config: Config, state: DenseState, rerank_id: str | None) -> list[Action]:
    """The two hybrid search pipelines; the reranking one names the rerank model (its Ref when it is new)."""
    from .plan import CREATE, NO_CHANGE, UPDATE, Action

    n = names(config)
    out = []
    for name, live, rerank in ((n.hybrid_pipeline, state.hybrid, False),
                               (n.hybrid_rerank_pipeline, state.hybrid_rerank, True)):
        want = hybrid_pipeline_body(config, rerank_model_id=(rerank_id or Ref("model")) if rerank else None)
        put = (Request("PUT", f"/_search/pipeline/{name}", want),)
        what = "then reranks" if rerank else "normalises and combines BM25 and neural scores"
        if live is None:
            out.append(Action(CREATE, HYBRID_PIPELINE, name, f"no search pipeline with this name ({what})", body=want,
                              requests=put))
        elif (rerank and rerank_id is None) or live != want:
            out.append(Action(UPDATE, HYBRID_PIPELINE, name, f"search pipeline differs ({what})", body=want, id=name,
                              requests=put))
        else:
            out.append(Action(NO_CHANGE, HYBRID_PIPELINE, name, f"search pipeline exists ({what})", id=name))
    return out


def _check_index(config: Config, index: DenseIndex, dimension: int) -> None:
    """ClusterError naming what differs when the existing k-NN index is not the one setup would make."""
    n = names(config)
    vector = index.properties.get(n.vector_field) or {}
    problems = []
    if vector.get("type") != "knn_vector":
        problems.append(f"{n.vector_field} is {vector.get('type') or 'unmapped'}, want knn_vector")
    else:
        if int(vector.get("dimension") or 0) != dimension:
            problems.append(f"{n.vector_field} has dimension {vector.get('dimension')}, the endpoint gives {dimension}")
        method = vector.get("method") or {}
        if (method.get("engine"), method.get("space_type")) != (ENGINE, SPACE):
            problems.append(f"{n.vector_field} uses {method.get('engine')}/{method.get('space_type')}, want "
                            f"{ENGINE}/{SPACE}")
    if str(index.settings.get("knn")).lower() != "true":
        problems.append("index.knn is not true")
    if index.settings.get("default_pipeline") != n.ingest_pipeline:
        problems.append(f"default_pipeline is {index.settings.get('default_pipeline')}, want {n.ingest_pipeline}")
    for field_name, kind in config.index.fields.items():
        got = (index.properties.get(field_name) or {}).get("type")
        if got != kind:
            problems.append(f"{field_name} is {got or 'unmapped'}, want {kind}")
    if problems:
        raise ClusterError(f"k-NN index {n.index} differs from what setup would make: " + "; ".join(problems)
                           + " (os-rerank never rebuilds an index silently)",
                           fix=f"delete index {n.index} (or run `os-rerank teardown`) and run setup again, or set "
                           "embedding.index to a new name")



def applied_event(config: Config, action: Action, request: Request,
                  ids: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(kind, message, id) of the event apply emits once `request` of `action` is sent (a deploy or undeploy has
    apply's own); `ids` is ApplyResult.dense_ids, with the id a `yields` request just created."""
    n = names(config)
    verb = "created" if action.kind == "create" else "updated"
    if request.method == "DELETE":
        return "delete", f"{action.resource} {action.name} deleted (old id {request.target})", request.target
    if action.resource == EMBEDDING_CONNECTOR:
        if request.yields:
            return "create", f"embedding connector {action.name} created (id {ids['connector']})", ids["connector"]
        return "update", f"embedding connector {action.name} updated in place (id {action.id})", action.id
    if action.resource == EMBEDDING_MODEL:
        return "create", f"embedding model {action.name} registered (id {ids['model']})", ids["model"]
    if action.resource == INGEST_PIPELINE:
        return action.kind, f"ingest pipeline {action.name} {verb} (model {ids['model']})", action.name
    if action.resource == DENSE_INDEX:
        return "create", f"k-NN index {action.name} created", action.name
    if action.resource == DENSE_DOCUMENTS:
        return "load", (f"{len(load_documents(config))} documents ingested into {action.name} through "
                        f"{n.ingest_pipeline}"), None
    return action.kind, f"search pipeline {action.name} {verb}", action.name


def settle(cluster: Cluster, config: Config, created: dict[str, list[str]]) -> None:
    """Wait until ML Commons' search lists the embedding connector and model this run created."""
    n = names(config)
    for kind, name in ((ml.CONNECTORS, n.connector), (ml.MODELS, n.model)):
        present = created.get("dense:" + kind, [])
        if present:
            ml.await_search(cluster, kind, ml.name_query(name), present=present)


# --- status ----------------------------------------------------------------------------------------------------------


def status_lines(cluster: Cluster, config: Config) -> list[tuple[str, str, str, str]]:
    """(resource, name, id, state) for each piece of the dense path, read now."""
    state = read_dense_state(cluster, config)
    n = names(config)
    rows = [(EMBEDDING_CONNECTOR, n.connector, c.id, "exists") for c in state.connectors]
    rows = rows or [(EMBEDDING_CONNECTOR, n.connector, "-", "missing")]
    models = [(EMBEDDING_MODEL, n.model, m.id, f"{m.model_state} (connector {m.connector_id})") for m in state.models]
    rows += models or [(EMBEDDING_MODEL, n.model, "-", "missing")]
    rows.append((INGEST_PIPELINE, n.ingest_pipeline, n.ingest_pipeline if state.ingest_pipeline else "-",
                 "embeds " + n.text_field + " into " + n.vector_field if state.ingest_pipeline else "missing"))
    if state.index is None:
        rows.append((DENSE_INDEX, n.index, "-", "missing"))
    else:
        vector = state.index.properties.get(n.vector_field) or {}
        rows.append((DENSE_INDEX, n.index, n.index, f"{len(state.index.documents)} documents, {n.vector_field} "
                     f"{vector.get('type')} dimension {vector.get('dimension')}"))
    for name, body in ((n.hybrid_pipeline, state.hybrid), (n.hybrid_rerank_pipeline, state.hybrid_rerank)):
        rows.append((HYBRID_PIPELINE, name, name if body else "-", "exists" if body else "missing"))
    return rows


def provisioned_first_stages(config: Config) -> tuple[str, ...]:
    """The first stages the config provisions: lexical always; dense and hybrid with an embedding section."""
    return FIRST_STAGES if config.embedding is not None else ("lexical",)


