"""The dense first stage, provisioned beside the rerank: the plan, apply, teardown and status pieces of `embedding`.

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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import mlcommons as ml
from .cluster import Cluster
from .config import Config
from .embedding_contracts import EmbeddingContract, get_embedding_contract
from .errors import ClusterError, EndpointError
from .events import OnEvent, ignore, note
from .render import (
    KNOWN_AFTER_APPLY,
    Version,
    _render_template,
    bulk_body,
    client_config_for,
    dumps,
    index_body,
    load_documents,
    model_body,
    pipeline_body,
    redacted_credential,
)
from .resources import read_painless, script_as_sent

if TYPE_CHECKING:
    from .apply import _Run
    from .plan import Action, Plan
    from .state import ClusterState

# Plan resources of the dense path, in apply order (apply.py hands these to `apply_action`).
EMBEDDING_CONNECTOR = "embedding connector"
EMBEDDING_MODEL = "embedding model"
INGEST_PIPELINE = "ingest pipeline"
DENSE_INDEX = "dense index"
DENSE_DOCUMENTS = "dense documents"
HYBRID_PIPELINE = "hybrid pipeline"
RESOURCES = (EMBEDDING_CONNECTOR, EMBEDDING_MODEL, INGEST_PIPELINE, DENSE_INDEX, DENSE_DOCUMENTS, HYBRID_PIPELINE)

ENGINE = "lucene"
SPACE = "cosinesimil"
PROBE_TEXT = "os-rerank dimension probe"
NORMALIZATION = "normalization-processor"
FIRST_STAGES = ("lexical", "dense", "hybrid")


@dataclass(frozen=True)
class Names:
    """Where the dense path lives, with the config's defaults resolved."""

    region: str
    connector_url: str
    connector: str
    model: str
    index: str
    text_field: str
    vector_field: str
    ingest_pipeline: str
    hybrid_pipeline: str
    hybrid_rerank_pipeline: str


def names(config: Config) -> Names:
    emb = config.embedding
    assert emb is not None
    region = emb.region or config.sagemaker.region
    return Names(region=region, connector_url=emb.connector_url(region), connector=emb.connector_name,
                 model=emb.model_name, index=emb.index or f"{config.index.name}-dense",
                 text_field=emb.text_field or config.pipeline.document_fields[0], vector_field=emb.vector_field,
                 ingest_pipeline=emb.ingest_pipeline, hybrid_pipeline=emb.hybrid_pipeline,
                 hybrid_rerank_pipeline=f"{emb.hybrid_pipeline}_rerank")


def contract_of(config: Config) -> EmbeddingContract:
    assert config.embedding is not None
    return get_embedding_contract(config.embedding.contract)


# --- the endpoint, called directly (the dimension probe) -------------------------------------------------------------


def embed_texts(config: Config, texts: Sequence[str], *, client: Any = None) -> list[list[float]]:
    """The embedding endpoint's vectors for `texts`, through boto3 sagemaker-runtime; EndpointError otherwise."""
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from .credentials import aws_session
    from .endpoint import endpoint_error

    emb = config.embedding
    assert emb is not None
    contract = contract_of(config)
    where = emb.local_endpoint_url or f"SageMaker runtime in {names(config).region}"
    body = json.dumps(contract.build_request(list(texts)), ensure_ascii=False).encode("utf-8")
    try:
        if client is None:
            kwargs: dict[str, Any] = {"region_name": names(config).region, "config": BotoConfig(
                retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=60)}
            if emb.local_endpoint_url:
                kwargs["endpoint_url"] = emb.local_endpoint_url
            client = aws_session(config).client("sagemaker-runtime", **kwargs)
        response = client.invoke_endpoint(EndpointName=emb.name, ContentType="application/json",
                                          Accept="application/json", Body=body)
        raw = response["Body"].read()
    except NoCredentialsError:
        raise EndpointError(f"no AWS credentials to call embedding endpoint {emb.name!r}",
                            fix="configure the boto3 chain (AWS_PROFILE, environment, instance role)") from None
    except EndpointConnectionError as exc:
        raise EndpointError(f"cannot reach embedding endpoint {emb.name!r} at {where}: {exc}",
                            fix="check embedding.local_endpoint_url (is the endpoint running?) or its region"
                            ) from None
    except ClientError as exc:
        raise endpoint_error(exc, emb.name) from None
    except BotoCoreError as exc:
        raise EndpointError(f"embedding endpoint {emb.name!r}: {exc}", fix="check the endpoint and network") from None
    from .contracts import ContractError

    try:
        return contract.parse_response(json.loads(raw.decode("utf-8")), len(texts))
    except (UnicodeDecodeError, ValueError, ContractError) as exc:
        raise EndpointError(f"embedding endpoint {emb.name!r} does not answer in the {contract.name} contract: {exc}",
                            fix="set embedding.contract to the contract the endpoint speaks") from None


def probe_dimension(config: Config) -> int:
    """embedding.dimension, else the length of the vector the endpoint returns for one probe text."""
    assert config.embedding is not None
    if config.embedding.dimension is not None:
        return config.embedding.dimension
    return len(embed_texts(config, [PROBE_TEXT])[0])


# --- rendering (pure) ------------------------------------------------------------------------------------------------


def connector_body(config: Config, *, version: Version, credential: dict[str, str]) -> dict[str, Any]:
    """The embedding connector: the rerank connector's template, with this contract's scripts and parameters."""
    from types import SimpleNamespace

    n, contract = names(config), contract_of(config)
    connector = SimpleNamespace(name=n.connector, description="SageMaker embedding model for the dense first stage "
                                "(managed by os-rerank)", access=config.connector.access)
    body = _render_template(
        "connector.json.j2", connector=connector, sagemaker=SimpleNamespace(region=n.region), contract=contract,
        url=n.connector_url, credential=credential, client_config=client_config_for(config, version),
        pre_process=script_as_sent(read_painless(contract.pre_process_file)),
        post_process=script_as_sent(read_painless(contract.post_process_file)),
        extra_parameters=contract.connector_parameters)
    assert isinstance(body, dict)
    return body


def embedding_model_body(config: Config, *, connector_id: str, model_group_id: str | None) -> dict[str, Any]:
    n = names(config)
    model = config.model.model_copy(update={"name": n.model, "description": "Remote embedding model for the dense "
                                            "first stage (managed by os-rerank)"})
    return model_body(config.model_copy(update={"model": model}), connector_id=connector_id,
                      model_group_id=model_group_id)


def ingest_pipeline_body(config: Config, *, model_id: str) -> dict[str, Any]:
    n = names(config)
    return {"description": "Embed each document for the dense first stage (managed by os-rerank)",
            "processors": [{"text_embedding": {"model_id": model_id, "field_map": {n.text_field: n.vector_field}}}]}


def dense_index_body(config: Config, dimension: int) -> dict[str, Any]:
    """The rerank index's mapping plus the vector field; k-NN on, documents embedded by the ingest pipeline."""
    n = names(config)
    body = index_body(config)
    body["settings"] = {"index": {**body["settings"]["index"], "knn": True, "default_pipeline": n.ingest_pipeline}}
    body["mappings"]["properties"][n.vector_field] = {
        "type": "knn_vector", "dimension": dimension,
        "method": {"name": "hnsw", "engine": ENGINE, "space_type": SPACE}}
    return body


def hybrid_pipeline_body(config: Config, *, rerank_model_id: str | None) -> dict[str, Any]:
    """Normalise and combine the hybrid query's BM25 and neural scores; with `rerank_model_id`, rerank after."""
    assert config.embedding is not None
    lexical = config.embedding.lexical_weight
    body: dict[str, Any] = {
        "description": "BM25 + neural scores, min-max normalised, weighted mean" + (
            ", then reranked" if rerank_model_id else "") + " (managed by os-rerank)",
        "phase_results_processors": [{NORMALIZATION: {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean",
                            "parameters": {"weights": [lexical, round(1.0 - lexical, 6)]}}}}],
    }
    if rerank_model_id:
        rerank = pipeline_body(config, model_id=rerank_model_id)
        for key in ("request_processors", "response_processors"):
            if key in rerank:
                body[key] = rerank[key]
    return body


def documents_text(config: Config) -> str:
    """The _bulk NDJSON of the sample documents for the dense index (the ingest pipeline adds the vectors)."""
    index = config.index.model_copy(update={"name": names(config).index})
    return bulk_body(config.model_copy(update={"index": index}), load_documents(config))


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
    group_id = None
    if config.model.group:
        group_id = group.id if group is not None and group.id and group.kind != "create" else KNOWN_AFTER_APPLY
    actions.extend(dense_actions(config, plan.version, dense_state, dimension, rerank_model, group_id))
    return Plan(plan.version, tuple(actions))


def admit_url(settings: Action, state: ClusterState, url: str) -> Action:
    """The settings action, also adding the trusted-endpoint regex of `url` when no entry admits it yet."""
    from .plan import UPDATE, Action
    from .wire import Request

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
    """The dense path's actions in apply order. ClusterError when the existing k-NN index cannot take them."""
    from .plan import CREATE, NO_CHANGE, REPLACE, UPDATE, Action, connector_differences

    n = names(config)
    want_connector = connector_body(config, version=version, credential=redacted_credential(config))
    live = ml.only(state.connectors, ml.CONNECTORS, n.connector)
    if live is None:
        connector = Action(CREATE, EMBEDDING_CONNECTOR, n.connector, "no embedding connector with this name",
                           body=want_connector)
    elif diffs := connector_differences(want_connector, live.body):
        loaded = tuple(m.id for m in state.models if m.connector_id == live.id and m.model_state in ml.LOADED_STATES)
        connector = Action(UPDATE, EMBEDDING_CONNECTOR, n.connector, "embedding connector differs: "
                           + "; ".join(diffs), body=want_connector, id=live.id, related=loaded)
    else:
        connector = Action(NO_CHANGE, EMBEDDING_CONNECTOR, n.connector, "embedding connector exists and matches",
                           id=live.id)

    model_live = ml.only(state.models, ml.MODELS, n.model)
    connector_id = connector.id if connector.kind != CREATE and connector.id else KNOWN_AFTER_APPLY
    model_body_ = embedding_model_body(config, connector_id=connector_id, model_group_id=model_group_id)
    if model_live is None:
        model = Action(CREATE, EMBEDDING_MODEL, n.model, "no embedding model with this name; register it and deploy",
                       body=model_body_)
    elif connector.kind == CREATE or model_live.connector_id != connector.id:
        model = Action(REPLACE, EMBEDDING_MODEL, n.model, f"embedding model uses connector {model_live.connector_id}"
                       "; register a new model, deploy it, delete the old one", body=model_body_, id=model_live.id,
                       related=(model_live.id,))
    elif model_live.model_state != ml.DEPLOYED:
        model = Action(UPDATE, EMBEDDING_MODEL, n.model, f"embedding model is {model_live.model_state}; deploy it",
                       id=model_live.id)
    else:
        model = Action(NO_CHANGE, EMBEDDING_MODEL, n.model, "embedding model exists and is DEPLOYED", id=model_live.id)
    new_model = model.kind in (CREATE, REPLACE)
    model_id = KNOWN_AFTER_APPLY if new_model else str(model.id)

    want_ingest = ingest_pipeline_body(config, model_id=model_id)
    if state.ingest_pipeline is None:
        ingest = Action(CREATE, INGEST_PIPELINE, n.ingest_pipeline, "no ingest pipeline with this name",
                        body=want_ingest)
    elif new_model or state.ingest_pipeline != want_ingest:
        ingest = Action(UPDATE, INGEST_PIPELINE, n.ingest_pipeline, "ingest pipeline differs (or the embedding "
                        "model is new): embed with " + model_id, body=want_ingest, id=n.ingest_pipeline)
    else:
        ingest = Action(NO_CHANGE, INGEST_PIPELINE, n.ingest_pipeline, f"ingest pipeline embeds with {model_id}",
                        id=n.ingest_pipeline)

    want_index = dense_index_body(config, dimension)
    docs = load_documents(config)
    text = documents_text(config)
    if state.index is None:
        index = Action(CREATE, DENSE_INDEX, n.index, f"no k-NN index with this name (dimension {dimension})",
                       body=want_index)
        documents = Action(CREATE, DENSE_DOCUMENTS, n.index, f"ingest {len(docs)} sample documents through "
                           f"{n.ingest_pipeline}", body=text)
    else:
        _check_index(config, state.index, dimension)
        index = Action(NO_CHANGE, DENSE_INDEX, n.index, f"k-NN index exists: {n.vector_field} is knn_vector "
                       f"({dimension}, {ENGINE} HNSW)", id=n.index)
        want_docs = {str(d["id"]): {k: v for k, v in d.items() if k != "id"} for d in docs}
        missing = [i for i in want_docs if i not in state.index.documents]
        differ = [i for i in want_docs if i in state.index.documents and state.index.documents[i] != want_docs[i]]
        if missing or differ or new_model or ingest.kind != NO_CHANGE:
            why = (f"{len(missing)} missing, {len(differ)} differ" if missing or differ
                   else "the embedding model or ingest pipeline changed")
            documents = Action(UPDATE, DENSE_DOCUMENTS, n.index, f"re-ingest {len(docs)} sample documents ({why})",
                               body=text)
        else:
            documents = Action(NO_CHANGE, DENSE_DOCUMENTS, n.index, f"all {len(docs)} sample documents present "
                               "and embedded")

    rerank_id = None
    if rerank_model is not None and rerank_model.kind in (NO_CHANGE, UPDATE):
        rerank_id = rerank_model.id
    out = [connector, model, ingest, index, documents]
    for name, live_body, rerank in ((n.hybrid_pipeline, state.hybrid, False),
                                    (n.hybrid_rerank_pipeline, state.hybrid_rerank, True)):
        want = hybrid_pipeline_body(config, rerank_model_id=(rerank_id or KNOWN_AFTER_APPLY) if rerank else None)
        what = "then reranks" if rerank else "normalises and combines BM25 and neural scores"
        if live_body is None:
            out.append(Action(CREATE, HYBRID_PIPELINE, name, f"no search pipeline with this name ({what})", body=want))
        elif (rerank and rerank_id is None) or live_body != want:
            out.append(Action(UPDATE, HYBRID_PIPELINE, name, f"search pipeline differs ({what})", body=want, id=name))
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


# --- apply (called by apply._Run.apply for the resources above) ------------------------------------------------------


def apply_action(run: _Run, action: Action) -> None:
    """Carry out one dense action with `run`'s writer, event stream and deploy loop."""
    from .plan import CREATE, REPLACE, UPDATE

    config, n = run.config, names(run.config)
    ids = run.result.dense_ids
    if action.resource == EMBEDDING_CONNECTOR:
        body = dumps(connector_body(config, version=run.version, credential=run.credential.values))
        if action.kind == CREATE:
            response = run.write(action, "POST", ml.path(ml.CONNECTORS, "_create"), body)
            ids["connector"] = str(response["connector_id"])
            run.created.setdefault("dense:" + ml.CONNECTORS, []).append(ids["connector"])
            run.emit("create", action, f"embedding connector {action.name} created (id {ids['connector']})",
                     ids["connector"])
            return
        assert action.id is not None
        for model_id in action.related:
            run.undeploy(action, model_id)
        run.write(action, "PUT", ml.path(ml.CONNECTORS, action.id), body)
        run.emit("update", action, f"embedding connector {action.name} updated in place (id {action.id})", action.id)
        for model_id in action.related:
            run.deploy(action, model_id)
    elif action.resource == EMBEDDING_MODEL:
        if action.kind == UPDATE:
            assert action.id is not None
            run.deploy(action, action.id)
            return
        if action.kind == REPLACE:
            for old in action.related:
                run.undeploy(action, old)
                run.write(action, "DELETE", ml.path(ml.MODELS, old), missing_ok=True)
                run.emit("delete", action, f"embedding model {action.name} deleted (old id {old})", old)
        group = run.result.model_group_id if config.model.group else None
        body = dumps(embedding_model_body(config, connector_id=ids["connector"], model_group_id=group))
        response = run.write(action, "POST", ml.path(ml.MODELS, "_register"), body)
        model_id = str(response.get("model_id") or ml.task_model_id(run.cluster, response.get("task_id"),
                                                                    timeout=run.deploy_timeout,
                                                                    poll=ml.DEPLOY_POLL_SECONDS))
        ids["model"] = model_id
        run.created.setdefault("dense:" + ml.MODELS, []).append(model_id)
        run.emit("create", action, f"embedding model {action.name} registered (id {model_id})", model_id)
        run.deploy(action, model_id)
    elif action.resource == INGEST_PIPELINE:
        body = dumps(ingest_pipeline_body(config, model_id=ids["model"]))
        run.write(action, "PUT", f"/_ingest/pipeline/{n.ingest_pipeline}", body)
        verb = "created" if action.kind == CREATE else "updated"
        run.emit(action.kind, action, f"ingest pipeline {n.ingest_pipeline} {verb} (model {ids['model']})",
                 n.ingest_pipeline)
    elif action.resource == DENSE_INDEX:
        run.write(action, "PUT", f"/{n.index}", dumps(action.body))
        run.emit("create", action, f"k-NN index {n.index} created", n.index)
    elif action.resource == DENSE_DOCUMENTS:
        response = run.write(action, "POST", "/_bulk?refresh=true", documents_text(config),
                             content_type="application/x-ndjson")
        _raise_bulk_errors(response, n.index)
        run.emit("load", action, f"{len(load_documents(config))} documents ingested into {n.index} through "
                 f"{n.ingest_pipeline}")
    elif action.resource == HYBRID_PIPELINE:
        rerank = action.name == n.hybrid_rerank_pipeline
        body = dumps(hybrid_pipeline_body(config, rerank_model_id=run.result.model_id if rerank else None))
        run.write(action, "PUT", f"/_search/pipeline/{action.name}", body)
        verb = "created" if action.kind == CREATE else "updated"
        run.emit(action.kind, action, f"search pipeline {action.name} {verb}", action.name)
    else:  # pragma: no cover - the plan only holds the resources above
        raise AssertionError(action.resource)


def _raise_bulk_errors(response: Any, index: str) -> None:
    if not (isinstance(response, dict) and response.get("errors")):
        return
    failed = [next(iter(item.values())) for item in response.get("items", [])]
    failed = [f for f in failed if isinstance(f, dict) and f.get("error")]
    first = failed[0] if failed else {}
    raise ClusterError(f"ingest into {index}: {len(failed)} document(s) failed; first: {first.get('_id')}: "
                       f"{dumps(first.get('error'))}", status=first.get("status"),
                       fix="check the embedding endpoint answers (os-rerank search --first-stage dense shows it) "
                       "and embedding.contract")


def settle(cluster: Cluster, config: Config, created: dict[str, list[str]]) -> None:
    """Wait until ML Commons' search lists the embedding connector and model this run created."""
    n = names(config)
    for kind, name in ((ml.CONNECTORS, n.connector), (ml.MODELS, n.model)):
        present = created.get("dense:" + kind, [])
        if present:
            ml.await_search(cluster, kind, ml.name_query(name), present=present)


# --- teardown --------------------------------------------------------------------------------------------------------


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



# --- search: the first stages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstStage:
    """How one first stage searches: where, with which query, and through which pipelines."""

    name: str
    index: str
    query: dict[str, Any]
    rerank_pipeline: str
    plain_pipeline: str | None  # the run without reranking (the hybrid query always needs its normalization)
    base: dict[str, Any]  # body keys besides the query (the vectors are never returned)


def default_first_stage(config: Config) -> str:
    return "hybrid" if config.embedding is not None else "lexical"


def embedding_model_id(cluster: Cluster, config: Config) -> str:
    """The id of the one embedding model the config names; ClusterError when there is none or several."""
    n = names(config)
    found = ml.find_by_name(cluster, ml.MODELS, n.model)
    if len(found) != 1:
        what = "no embedding model" if not found else f"{len(found)} embedding models"
        raise ClusterError(f"{what} named {n.model!r} on the cluster", fix="run `os-rerank setup` (with the "
                           "embedding section in the config)")
    return found[0].id


def neural_query(config: Config, query_text: str, model_id: str, k: int) -> dict[str, Any]:
    n = names(config)
    return {"neural": {n.vector_field: {"query_text": query_text, "model_id": model_id, "k": k}}}


def first_stage(config: Config, stage: str, query_text: str, *, window: int, lexical: dict[str, Any],
                model_id: str | None = None) -> FirstStage:
    """The first stage `stage` for `query_text`; `lexical` is the BM25 query (search.first_stage_query)."""
    if stage == "lexical":
        return FirstStage(stage, config.index.name, lexical, config.pipeline.name, None, {})
    from .errors import UsageError

    if config.embedding is None:
        raise UsageError(f"--first-stage {stage} needs the embedding section in the config (it provisions the "
                         "k-NN index and the embedding model)")
    assert model_id is not None
    n = names(config)
    k = max(config.embedding.k, window)
    neural = neural_query(config, query_text, model_id, k)
    base = {"_source": {"excludes": [n.vector_field]}}
    if stage == "dense":
        return FirstStage(stage, n.index, neural, config.pipeline.name, None, base)
    if stage == "hybrid":
        return FirstStage(stage, n.index, {"hybrid": {"queries": [lexical, neural]}}, n.hybrid_rerank_pipeline,
                          n.hybrid_pipeline, base)
    raise UsageError(f"--first-stage must be one of {', '.join(FIRST_STAGES)}, not {stage!r}")


# --- eval: the documents, embedded ---------------------------------------------------------------------------------

EVAL_BULK_CHUNK = 100  # documents per _bulk through the ingest pipeline (one endpoint call each)


def eval_dense_index(config: Config) -> str:
    return f"{config.index.name}-eval-dense"


def prepare_dense_documents(cluster: Cluster, config: Config, corpus: list[dict[str, Any]] | None, *,
                            on_event: OnEvent = ignore) -> str:
    """The k-NN index eval's dense and hybrid stages search: setup's for the test index, else `<index>-eval-dense`
    holding `corpus`, ingested through the embedding pipeline (reused when its count matches)."""
    from .state import count_documents

    if corpus is None:
        index = names(config).index
        if count_documents(cluster, index) is None:
            raise ClusterError(f"the k-NN index {index} does not exist", fix="run `os-rerank setup` (with the "
                               "embedding section), or pass --corpus FILE")
        return index
    index = eval_dense_index(config)
    count = count_documents(cluster, index)
    if count == len(corpus):
        on_event(note(f"eval: k-NN index {index} already holds {count} documents; reusing it"))
        return index
    if count is not None:
        on_event(note(f"eval: k-NN index {index} holds {count} documents, the corpus {len(corpus)}; recreating it"))
        cluster.request("DELETE", f"/{index}")
    cluster.request("PUT", f"/{index}", body=dense_index_body(config, probe_dimension(config)))
    eval_config = config.model_copy(update={"index": config.index.model_copy(update={"name": index})})
    for start in range(0, len(corpus), EVAL_BULK_CHUNK):
        chunk = corpus[start : start + EVAL_BULK_CHUNK]
        response = cluster.request("POST", "/_bulk", body=bulk_body(eval_config, chunk), params={"refresh": "true"},
                                   content_type="application/x-ndjson")
        _raise_bulk_errors(response, index)
        on_event(note(f"eval: embedded {start + len(chunk)} of {len(corpus)} documents into {index}"))
    return index


# --- render (offline) ------------------------------------------------------------------------------------------------

KNOWN_AFTER_PROBE = "(known after the probe)"


def render_requests(config: Config, *, version: Version) -> list[Any]:
    """The requests setup sends for the dense path, in order, as `render --what dense` prints them: ids not known
    yet as (known after apply), the dimension (when embedding.dimension is unset) as (known after the probe)."""
    from .errors import UsageError
    from .render import Rendered

    if config.embedding is None:
        raise UsageError("--what dense needs the embedding section in the config")
    n = names(config)
    dimension: Any = config.embedding.dimension or KNOWN_AFTER_PROBE
    group = KNOWN_AFTER_APPLY if config.model.group else None
    return [
        Rendered("embedding connector", "POST", ml.path(ml.CONNECTORS, "_create"),
                 dumps(connector_body(config, version=version, credential=redacted_credential(config)))),
        Rendered("embedding model", "POST", ml.path(ml.MODELS, "_register"),
                 dumps(embedding_model_body(config, connector_id=KNOWN_AFTER_APPLY, model_group_id=group))),
        Rendered("ingest pipeline", "PUT", f"/_ingest/pipeline/{n.ingest_pipeline}",
                 dumps(ingest_pipeline_body(config, model_id=KNOWN_AFTER_APPLY))),
        Rendered("dense index", "PUT", f"/{n.index}", dumps(dense_index_body(config, dimension))),
        Rendered("dense documents", "POST", "/_bulk?refresh=true", documents_text(config),
                 content_type="application/x-ndjson"),
        Rendered("hybrid pipeline", "PUT", f"/_search/pipeline/{n.hybrid_pipeline}",
                 dumps(hybrid_pipeline_body(config, rerank_model_id=None))),
        Rendered("hybrid pipeline", "PUT", f"/_search/pipeline/{n.hybrid_rerank_pipeline}",
                 dumps(hybrid_pipeline_body(config, rerank_model_id=KNOWN_AFTER_APPLY))),
    ]
