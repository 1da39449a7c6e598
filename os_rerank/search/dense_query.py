"""The dense first stage at query time: the embedding endpoint called directly (the dimension probe, verify's
vectors), the first stage queries search and eval run (lexical, dense, hybrid), and the k-NN index eval embeds a
corpus into. The provisioning side is dense.py; the bodies are dense_render.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError, EndpointError
from ..events import OnEvent, ignore, note
from ..provision.dense_render import FIRST_STAGES, contract_of, dense_index_body, names
from ..provision.render import bulk_body, dumps

PROBE_TEXT = "os-rerank dimension probe"


# --- the endpoint, called directly (the dimension probe) -------------------------------------------------------------


def embed_texts(config: Config, texts: Sequence[str], *, client: Any = None) -> list[list[float]]:
    """The embedding endpoint's vectors for `texts`, through boto3 sagemaker-runtime; EndpointError otherwise."""
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from ..credentials import aws_session
    from ..endpoint import endpoint_error

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
    from ..contracts import ContractError

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
    from ..errors import UsageError

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
    from ..provision.state import count_documents

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
        raise_bulk_errors(response, index)
        on_event(note(f"eval: embedded {start + len(chunk)} of {len(corpus)} documents into {index}"))
    return index


def raise_bulk_errors(response: Any, index: str) -> None:
    """ClusterError naming the first failed document of a _bulk through the ingest pipeline."""
    if not (isinstance(response, dict) and response.get("errors")):
        return
    failed = [next(iter(item.values())) for item in response.get("items", [])]
    failed = [f for f in failed if isinstance(f, dict) and f.get("error")]
    first = failed[0] if failed else {}
    raise ClusterError(f"ingest into {index}: {len(failed)} document(s) failed; first: {first.get('_id')}: "
                       f"{dumps(first.get('error'))}", status=first.get("status"),
                       fix="check the embedding endpoint answers (os-rerank search --first-stage dense shows it) "
                       "and embedding.contract")

