"""The configuration: strict pydantic models, loaded from one YAML file plus documented environment overrides.

Precedence, highest first: environment variables > the YAML file > defaults. Secrets never live in the YAML:
AWS credentials come from the boto3 chain, the OpenSearch password from OPENSEARCH_PASSWORD. config_load.py reads
the file (bounded YAML, line numbers, overrides, one-line errors); `load_config` validates it against these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .config_deploy import DeployConfig as DeployConfig  # re-exported with every section: one import path
from .config_embedding import EmbeddingConfig as EmbeddingConfig
from .config_load import ENV_OVERRIDES as ENV_OVERRIDES  # re-exported: the command line's epilog lists them
from .config_load import Lines, apply_env, format_error, read_yaml, secret_problems
from .config_types import ENDPOINT_NAME_PATTERN as _ENDPOINT_NAME
from .config_types import REGION_PATTERN as REGION_PATTERN  # re-exported: the command line checks --region with it
from .config_types import EndpointAddress
from .config_types import NonEmpty as NonEmpty
from .config_types import Strict as _Strict
from .config_types import http_url as http_url
from .contracts import CONTRACT_NAMES
from .errors import ConfigError

_REGION = REGION_PATTERN

FieldType = Literal["text", "keyword"]
_TEXT: FieldType = "text"


class NoAuth(_Strict):
    type: Literal["none"] = Field(default="none", description="none: no authentication.")


class BasicAuth(_Strict):
    type: Literal["basic"] = Field(
        description="basic: HTTP basic auth; the password comes from OPENSEARCH_PASSWORD, never from the file.")
    username: NonEmpty = Field(default="admin", description="The basic-auth user (OPENSEARCH_USERNAME overrides it).")


class SigV4Auth(_Strict):
    type: Literal["aws_sigv4"] = Field(
        description="aws_sigv4: requests signed with the boto3 chain's credentials (Amazon OpenSearch Service).")
    region: Annotated[str, Field(pattern=_REGION)] | None = Field(
        default=None, description="The region requests are signed for; default: sagemaker.region.")
    service: Literal["es", "aoss"] = Field(
        default="es", description="es for an Amazon OpenSearch Service domain, aoss for OpenSearch Serverless.")


Auth = Annotated[NoAuth | BasicAuth | SigV4Auth, Field(discriminator="type")]


class OpenSearchConfig(_Strict):
    url: NonEmpty = Field(
        default="http://localhost:9200", description="The cluster's URL (OPENSEARCH_URL overrides it).")
    auth: Auth = Field(
        default=NoAuth(), description="How os-rerank authenticates to the cluster: type none, basic or aws_sigv4.")
    verify_certs: bool = Field(default=True, description="Check the cluster's TLS certificate (false for tests only).")
    ca_certs: Path | None = Field(
        default=None, description=(
            "The CA bundle that verifies the cluster's certificate (OPENSEARCH_CA_CERTS overrides it)."))
    timeout: Annotated[float, Field(gt=0, le=600, allow_inf_nan=False)] = Field(
        default=30.0, description="Seconds per request to the cluster.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return http_url(v)


class SageMakerConfig(EndpointAddress):
    region: Annotated[str, Field(pattern=_REGION)] = Field(
        description="The endpoint's AWS region (AWS_REGION overrides it).")
    endpoint_name: Annotated[str, Field(pattern=_ENDPOINT_NAME)] | None = Field(
        default=None, description="The SageMaker endpoint's name.")
    endpoint_url: str | None = Field(
        default=None, description=(
            "The full invocation URL the connector calls, from OpenSearch's side of the network; default: the "
            "SageMaker runtime URL for region and endpoint_name."))
    contract: Literal[CONTRACT_NAMES] = Field(  # type: ignore[valid-type]
        default="hf-text-classification",
        description="The request and response format the endpoint speaks (see \"Endpoint contracts\").")
    local_endpoint_url: str | None = Field(
        default=None, description=(
            "Base URL where os-rerank itself reaches a local SageMaker-compatible endpoint (`os-rerank serve`), given"
            " to boto3 as endpoint_url. In docker compose it differs from the host the connector uses."))
    max_batch: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=100, description=(
            "Documents per endpoint call: the largest page `search --window` may send through the reranker."))

    @property
    def connector_url(self) -> str:
        """The URL in the connector's predict action."""
        if self.endpoint_url:
            return self.endpoint_url
        if self.local_endpoint_url:
            return f"{self.local_endpoint_url}/endpoints/{self.name}/invocations"
        suffix = ".amazonaws.com.cn" if self.region.startswith("cn-") else ".amazonaws.com"
        return f"https://runtime.sagemaker.{self.region}{suffix}/endpoints/{self.name}/invocations"


class ClientConfig(_Strict):
    """The connector's HTTP client settings. Timeouts are in seconds here; render converts for ML Commons 2.13."""

    connection_timeout: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=10, description="Seconds the connector waits for a connection to the endpoint.")
    read_timeout: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=30, description="Seconds the connector waits for the endpoint's answer.")
    max_connection: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=20, description="The connector's connection pool size.")
    max_retry_times: Annotated[int, Field(ge=-1, le=100)] = Field(
        default=3, description=(
            "Retries of a failed endpoint call (-1: until retry_timeout_seconds; retries need OpenSearch 2.15+)."))
    retry_backoff_policy: Literal["constant", "exponential_equal_jitter", "exponential_full_jitter"] = Field(
        default="exponential_full_jitter", description="How the wait between retries grows.")
    retry_backoff_millis: Annotated[int, Field(ge=0, le=60000)] = Field(
        default=200, description="The base wait between retries, in milliseconds.")
    retry_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=30, description="Seconds after which the connector stops retrying.")


class Access(_Strict):
    """ML Commons access control for the model group (model.access) or the connector (connector.access); needs the
    security plugin and plugins.ml_commons.model_access_control_enabled or connector_access_control_enabled, which
    the admin's settings then include."""

    mode: Literal["public", "private", "restricted"] = Field(
        description="public, private (the owner and admins) or restricted (users holding one of backend_roles).")
    backend_roles: list[NonEmpty] = Field(
        default_factory=list, description="The backend roles that may use the resource; with mode restricted only.")

    @model_validator(mode="after")
    def _roles_only_when_restricted(self) -> Access:
        # ML Commons' own rule (MLModelGroupManager, TransportCreateConnectorAction, 2.19.1)
        if self.mode == "restricted" and not self.backend_roles:
            raise ValueError("mode restricted needs backend_roles (one or more)")
        if self.mode != "restricted" and self.backend_roles:
            raise ValueError(f"backend_roles only go with mode restricted, not {self.mode}")
        return self


class ConnectorConfig(_Strict):
    name: NonEmpty = Field(
        default="os-rerank sagemaker cross-encoder", description=(
            "The connector's name: os-rerank finds it by this name, never by a remembered id."))
    description: str = Field(
        default="SageMaker cross-encoder for the rerank search pipeline (managed by os-rerank)", description=(
            "The connector's description."))
    client_config: ClientConfig = Field(default=ClientConfig(), description="The connector's HTTP client settings.")
    role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = Field(
        default=None, description="Amazon OpenSearch Service only: the connector holds this IAM role instead of keys.")
    access: Access | None = Field(
        default=None, description=(
            "Who may see, update and register models on the connector (it holds the credential); unset sends nothing."))


class ModelConfig(_Strict):
    name: NonEmpty = Field(
        default="os-rerank cross-encoder", description="The remote model's name: os-rerank finds it by this name.")
    description: str = Field(
        default="Remote cross-encoder for reranking (managed by os-rerank)", description="The model's description.")
    group: NonEmpty | None = Field(
        default="os-rerank", description=(
            "Model group to register into; created when missing. null lets ML Commons pick one named like the model."))
    access: Access | None = Field(
        default=None, description="Who may use the model group's models; unset sends nothing (ML Commons' default).")

    @model_validator(mode="after")
    def _access_needs_a_group(self) -> ModelConfig:
        if self.access is not None and self.group is None:
            raise ValueError("access needs group: access control applies to the model group os-rerank creates")
        return self


class IndexConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-+]*$", max_length=255)] = Field(
        default="my-test-data", description="The test index setup creates and loads the sample documents into.")
    fields: dict[NonEmpty, FieldType] = Field(
        default_factory=lambda: {"passage_text": _TEXT}, description=(
            "Field name -> mapping type (text or keyword) of the text fields the sample documents carry."))
    documents: Path | None = Field(
        default=None, description=(
            "JSONL file of sample documents (one JSON object per line), relative to the config file. Unset: the four "
            "passages of the OpenSearch cross-encoder tutorial."))

    @field_validator("fields")
    @classmethod
    def _some_fields(cls, v: dict[str, FieldType]) -> dict[str, FieldType]:
        if not v:
            raise ValueError("needs at least one field")
        return v


class PipelineConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] = Field(
        default="rerank_pipeline_sagemaker", description="The search pipeline's name.")
    description: str = Field(
        default="Rerank with a SageMaker cross-encoder (managed by os-rerank)", description=(
            "The search pipeline's description."))
    document_fields: Annotated[list[NonEmpty], Field(min_length=1, max_length=50)] = Field(
        default_factory=lambda: ["passage_text"], description="The document fields the reranker reads, in order.")
    ignore_failure: bool = Field(
        default=False, description=(
            "true serves a search without the rerank context un-reranked instead of failing it: `os-rerank promote` "
            "needs it."))
    oversample: Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False)] | None = Field(
        default=None, description=(
            "Rerank `oversample` times the hits a search asks for and return what it asked for, in the pipeline "
            "itself (the oversample and truncate_hits processors of search-pipeline-common); unset: the pipeline "
            "reranks the page it is given."))


class VerifyConfig(_Strict):
    """The probe `verify` sends, and what it expects back."""

    query: NonEmpty = Field(
        default="What is the capital of the United States?", description="The query `verify` sends.")
    expected_top: str | None = Field(
        default="Washington, D.C.", description=(
            "Must be the top hit of the sample index for `query` after reranking; null skips that check."))
    tolerance: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        default=1e-4, description=(
            "Largest difference allowed between a score through OpenSearch (FLOAT32) and straight from the endpoint."))


class AwsConfig(_Strict):
    profile: NonEmpty | None = Field(
        default=None, description="The AWS profile of the boto3 chain (AWS_PROFILE overrides it).")


class Config(_Strict):
    opensearch: OpenSearchConfig = Field(default=OpenSearchConfig(), description="The cluster to provision and search.")
    sagemaker: SageMakerConfig = Field(description="The cross-encoder endpoint the connector calls.")
    connector: ConnectorConfig = Field(
        default=ConnectorConfig(), description="The ML Commons connector to the endpoint.")
    model: ModelConfig = Field(
        default=ModelConfig(), description="The remote model on the connector, and its model group.")
    index: IndexConfig = Field(default=IndexConfig(), description="The test index and its sample documents.")
    pipeline: PipelineConfig = Field(default=PipelineConfig(), description="The rerank search pipeline.")
    verify: VerifyConfig = Field(
        default=VerifyConfig(), description="The probe `verify` sends, and what it expects back.")
    aws: AwsConfig = Field(default=AwsConfig(), description="AWS settings of the boto3 chain.")
    deploy: DeployConfig | None = Field(
        default=None, description="What `os-rerank endpoint deploy` puts on SageMaker; unset: no deploy.")
    embedding: EmbeddingConfig | None = Field(
        default=None, description=(
            "The embedding endpoint of a dense and hybrid first stage (see \"Dense and hybrid first stages\"); unset: "
            "lexical only."))
    # Not from the YAML: where it came from, and the password from the environment.
    source: Path = Field(default=Path("config.yaml"), exclude=True)
    password: SecretStr | None = Field(default=None, exclude=True)

    @property
    def documents_path(self) -> Path | None:
        """The sample documents file, resolved against the config file's folder."""
        if self.index.documents is None:
            return None
        return self.index.documents if self.index.documents.is_absolute() else self.source.parent / self.index.documents

    @property
    def deploy_model_dir(self) -> Path | None:
        """deploy.model_dir, resolved against the config file's folder."""
        if self.deploy is None or self.deploy.model_dir is None:
            return None
        path = Path(self.deploy.model_dir).expanduser()
        return path if path.is_absolute() else self.source.parent / path


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """The validated Config from the YAML file at `path` with `env` overrides; ConfigError lists every problem."""
    path = Path(path)
    name = path.name
    data, lines = read_yaml(path)
    problems = secret_problems(data, name, lines)
    if problems:
        raise ConfigError(problems)
    data, password, from_env = apply_env(data, dict(env or {}))
    try:
        config = Config.model_validate({**data, "source": path, "password": password})
    except ValidationError as exc:
        raise ConfigError([format_error(err, name, lines, from_env) for err in exc.errors()]) from None
    problems = _cross_problems(config, name, lines)
    if problems:
        raise ConfigError(problems)
    return config


def _cross_problems(config: Config, name: str, lines: Lines) -> list[str]:
    """Problems that span sections, each placed at the field a user should change."""
    problems = _embedding_problems(config, name, lines)
    missing = [f for f in config.pipeline.document_fields if f not in config.index.fields]
    if not missing:
        return problems
    path = ("pipeline", "document_fields")
    where = f"{name}:{lines[path]}" if path in lines else name
    known = ", ".join(config.index.fields)
    return [f"{where}: pipeline.document_fields: {', '.join(missing)} not in index.fields ({known})", *problems]


def _embedding_problems(config: Config, name: str, lines: dict[tuple[str, ...], int]) -> list[str]:
    """The embedding section's fields that must agree with the index and pipeline sections."""
    emb = config.embedding
    if emb is None:
        return []

    def at(key: str) -> str:
        path = ("embedding", key)
        return f"{name}:{lines[path]}" if path in lines else (f"{name}:{lines[('embedding',)]}"
                                                               if ("embedding",) in lines else name)

    out = []
    known = ", ".join(config.index.fields)
    if emb.text_field is not None and emb.text_field not in config.index.fields:
        out.append(f"{at('text_field')}: embedding.text_field: {emb.text_field} not in index.fields ({known})")
    if emb.vector_field in config.index.fields:
        out.append(f"{at('vector_field')}: embedding.vector_field: {emb.vector_field} is a text field in "
                   "index.fields; pick another name for the vectors")
    if emb.index == config.index.name:
        out.append(f"{at('index')}: embedding.index: {emb.index} is index.name; the k-NN index must be its own")
    elif emb.index == f"{config.index.name}-eval":
        out.append(f"{at('index')}: embedding.index: {emb.index} is the index eval loads; the k-NN index must be "
                   "its own")
    # Each path finds its resources by name: a name shared by both would make setup rewrite one with the other.
    shared = [("connector_name", emb.connector_name, "connector.name", config.connector.name),
              ("model_name", emb.model_name, "model.name", config.model.name),
              ("hybrid_pipeline", emb.hybrid_pipeline, "pipeline.name", config.pipeline.name),
              ("hybrid_pipeline", f"{emb.hybrid_pipeline}_rerank", "pipeline.name", config.pipeline.name),
              ("ingest_pipeline", emb.ingest_pipeline, "pipeline.name", config.pipeline.name)]
    for key, ours, other_key, other in shared:
        if ours == other:
            out.append(f"{at(key)}: embedding.{key}: {ours} is also {other_key}; the dense path needs its own name")
    return out

