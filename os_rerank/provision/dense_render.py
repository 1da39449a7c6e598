"""The dense first stage's bodies, rendered offline (pure): the embedding connector and model, the ingest pipeline,
the k-NN index, the documents' NDJSON and the hybrid search pipelines, and `render --what dense`.

These functions are the only producers of the dense path's bodies: the plan (dense.py) calls them with typed
placeholders (`wire.Ref` for ids created during the run, `wire.Secret` for the credential) and apply sends what the
plan carries; `render --what dense` calls them with every placeholder shown as text. dense.py says why the resources
look the way they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import mlcommons as ml
from ..config import Config
from ..embedding_contracts import EmbeddingContract, get_embedding_contract
from ..resources import read_painless, script_as_sent
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

ENGINE = "lucene"
SPACE = "cosinesimil"
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


# --- render (offline) ------------------------------------------------------------------------------------------------

KNOWN_AFTER_PROBE = "(known after the probe)"


def render_requests(config: Config, *, version: Version) -> list[Any]:
    """The requests setup sends for the dense path, in order, as `render --what dense` prints them: ids not known
    yet as (known after apply), the dimension (when embedding.dimension is unset) as (known after the probe)."""
    from ..errors import UsageError
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

