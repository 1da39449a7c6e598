"""The `embedding` section: the endpoint, connector, model, index and pipelines of a dense and hybrid first stage
(dense.py). The checks against the index and pipeline sections live with Config (config.py), which sees them all.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .config_types import ENDPOINT_NAME_PATTERN as _ENDPOINT_NAME
from .config_types import REGION_PATTERN as _REGION
from .config_types import EndpointAddress, NonEmpty
from .embedding_contracts import EMBEDDING_CONTRACT_NAMES


class EmbeddingConfig(EndpointAddress):
    """The dense first stage (dense.py): an embedding endpoint, its connector and model, an ingest pipeline, a k-NN
    index of the sample documents, and the search pipelines that combine BM25 and neural scores before the rerank."""

    region: Annotated[str, Field(pattern=_REGION)] | None = Field(
        None, description="AWS region of the embedding endpoint (default: sagemaker.region)")
    endpoint_name: Annotated[str, Field(pattern=_ENDPOINT_NAME)] | None = Field(
        None, description="SageMaker endpoint that embeds texts")
    endpoint_url: str | None = Field(
        None, description="full invocation URL the connector calls (default: the SageMaker runtime URL for "
        "region and endpoint_name, or local_endpoint_url's)")
    local_endpoint_url: str | None = Field(
        None, description="base URL where os-rerank itself reaches a local SageMaker-compatible embedding endpoint "
        "(`os-rerank serve`), as sagemaker.local_endpoint_url")
    contract: Literal[EMBEDDING_CONTRACT_NAMES] = Field(  # type: ignore[valid-type]
        "vector-embedding", description="how the endpoint wants texts and answers vectors: "
        + ", ".join(EMBEDDING_CONTRACT_NAMES))
    dimension: Annotated[int, Field(ge=1, le=16000)] | None = Field(
        None, description="vector dimension; default: asked of the endpoint by embedding one probe text")
    connector_name: NonEmpty = Field("os-rerank sagemaker embedding", description="name of the embedding connector")
    model_name: NonEmpty = Field("os-rerank embedding", description="name of the embedding model (in model.group)")
    index: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-+]*$", max_length=255)] | None = Field(
        None, description="the k-NN index of the sample documents and their vectors (default: <index.name>-dense)")
    text_field: NonEmpty | None = Field(
        None, description="the document field that is embedded (default: the first of pipeline.document_fields)")
    vector_field: NonEmpty = Field("embedding", description="the knn_vector field that holds each document's vector")
    ingest_pipeline: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] = Field(
        "os_rerank_embedding", description="the ingest pipeline with the text_embedding processor")
    hybrid_pipeline: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] = Field(
        "os_rerank_hybrid", description="the search pipeline that normalises and combines BM25 and neural scores; "
        "<hybrid_pipeline>_rerank does the same, then reranks")
    lexical_weight: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        0.3, description="weight of the BM25 score in the hybrid combination (the neural score gets 1 - this)")
    k: Annotated[int, Field(ge=1, le=10000)] = Field(
        100, description="nearest neighbours a neural query asks for (the most a dense first stage can return)")

    def connector_url(self, region: str) -> str:
        """The URL in the embedding connector's predict action (`region`: the resolved one)."""
        if self.endpoint_url:
            return self.endpoint_url
        if self.local_endpoint_url:
            return f"{self.local_endpoint_url}/endpoints/{self.name}/invocations"
        suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
        return f"https://runtime.sagemaker.{region}{suffix}/endpoints/{self.name}/invocations"
