"""The configuration: strict pydantic models, loaded from one YAML file plus documented environment overrides.

Precedence, highest first: environment variables > the YAML file > defaults. Secrets never live in the YAML:
AWS credentials come from the boto3 chain, the OpenSearch password from OPENSEARCH_PASSWORD. config_load.py reads
the file (bounded YAML, line numbers, overrides, one-line errors); `load_config` validates it against these models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .config_load import ENV_OVERRIDES as ENV_OVERRIDES  # re-exported: the command line's epilog lists them
from .config_load import Lines, apply_env, format_error, read_yaml, secret_problems
from .contracts import CONTRACT_NAMES
from .errors import ConfigError
from .presets import PRESET_NAMES

REGION_PATTERN = _REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_INVOCATIONS_PATH = re.compile(r"/endpoints/([^/]+)/invocations$")

NonEmpty = Annotated[str, Field(min_length=1)]
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def http_url(value: str) -> str:
    """`value` as an http(s) URL without a trailing slash; ValueError saying what is wrong with it.

    Checked the way urllib and opensearch-py will read it later, so that a URL `validate` accepts never fails in
    `plan`: a host, a numeric port in range, no query or fragment, no spaces or control characters.
    """
    from urllib.parse import urlsplit

    shown = repr(value) if len(value) <= 200 else repr(value[:200] + "…")
    if _CONTROL.search(value):
        raise ValueError(f"a URL has no spaces or control characters, got {shown}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {shown}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"the port of {shown} is not a number from 1 to 65535")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"expected a URL without ?query or #fragment, got {shown}")
    return value.rstrip("/")
FieldType = Literal["text", "keyword"]
_TEXT: FieldType = "text"


class _Strict(BaseModel):
    # defer_build: only Config validates a whole file; building each section's own validator at import cost ~45 ms
    # of every command's start-up, for validators that are built on first use instead.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoAuth(_Strict):
    type: Literal["none"] = "none"


class BasicAuth(_Strict):
    type: Literal["basic"]
    username: NonEmpty = "admin"


class SigV4Auth(_Strict):
    type: Literal["aws_sigv4"]
    region: Annotated[str, Field(pattern=_REGION)] | None = None
    service: Literal["es", "aoss"] = "es"


Auth = Annotated[NoAuth | BasicAuth | SigV4Auth, Field(discriminator="type")]


class OpenSearchConfig(_Strict):
    url: NonEmpty = "http://localhost:9200"
    auth: Auth = NoAuth()
    verify_certs: bool = True
    ca_certs: Path | None = None
    timeout: Annotated[float, Field(gt=0, le=600, allow_inf_nan=False)] = 30.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return http_url(v)


class SageMakerConfig(_Strict):
    region: Annotated[str, Field(pattern=_REGION)]
    endpoint_name: Annotated[str, Field(pattern=_ENDPOINT_NAME)] | None = None
    # The full invocation URL the *connector* calls (from OpenSearch's point of view); by default the SageMaker
    # runtime URL for region and endpoint_name.
    endpoint_url: str | None = None
    contract: Literal[CONTRACT_NAMES] = "hf-text-classification"  # type: ignore[valid-type]
    # Base URL where os-rerank itself reaches a local SageMaker-compatible endpoint (`os-rerank serve`), given to
    # boto3 as endpoint_url. In docker compose it differs from the host the connector uses.
    local_endpoint_url: str | None = None
    # Documents per endpoint call: the largest page `search --window` may send through the reranker.
    max_batch: Annotated[int, Field(ge=1, le=1000)] = 100

    @field_validator("endpoint_url", "local_endpoint_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return None if v is None else http_url(v)

    @model_validator(mode="after")
    def _name_known(self) -> SageMakerConfig:
        if self.endpoint_name is None and self.endpoint_url is None:
            raise ValueError("set endpoint_name (or endpoint_url, the full invocation URL)")
        if self.endpoint_name is None and not _INVOCATIONS_PATH.search(str(self.endpoint_url)):
            raise ValueError("endpoint_url must end in /endpoints/<name>/invocations, or set endpoint_name too")
        return self

    @property
    def name(self) -> str:
        """The endpoint's name, as boto3's invoke_endpoint wants it."""
        if self.endpoint_name:
            return self.endpoint_name
        match = _INVOCATIONS_PATH.search(str(self.endpoint_url))
        assert match is not None  # guaranteed by _name_known
        return match.group(1)

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

    connection_timeout: Annotated[int, Field(ge=1, le=3600)] = 10
    read_timeout: Annotated[int, Field(ge=1, le=3600)] = 30
    max_connection: Annotated[int, Field(ge=1, le=1000)] = 20
    max_retry_times: Annotated[int, Field(ge=-1, le=100)] = 3
    retry_backoff_policy: Literal["constant", "exponential_equal_jitter", "exponential_full_jitter"] = (
        "exponential_full_jitter"
    )
    retry_backoff_millis: Annotated[int, Field(ge=0, le=60000)] = 200
    retry_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 30


class Access(_Strict):
    """ML Commons access control for the model group (model.access) or the connector (connector.access); needs the
    security plugin and plugins.ml_commons.model_access_control_enabled or connector_access_control_enabled, which
    the admin's settings then include."""

    mode: Literal["public", "private", "restricted"]
    backend_roles: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="after")
    def _roles_only_when_restricted(self) -> Access:
        # ML Commons' own rule (MLModelGroupManager, TransportCreateConnectorAction, 2.19.1)
        if self.mode == "restricted" and not self.backend_roles:
            raise ValueError("mode restricted needs backend_roles (one or more)")
        if self.mode != "restricted" and self.backend_roles:
            raise ValueError(f"backend_roles only go with mode restricted, not {self.mode}")
        return self


class ConnectorConfig(_Strict):
    name: NonEmpty = "os-rerank sagemaker cross-encoder"
    description: str = "SageMaker cross-encoder for the rerank search pipeline (managed by os-rerank)"
    client_config: ClientConfig = ClientConfig()
    # Amazon OpenSearch Service only: the connector holds this IAM role instead of keys.
    role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = None
    # Who may see, update and register models on the connector (it holds the credential); None sends nothing.
    access: Access | None = None


class ModelConfig(_Strict):
    name: NonEmpty = "os-rerank cross-encoder"
    description: str = "Remote cross-encoder for reranking (managed by os-rerank)"
    # Model group to register into; created when missing. None lets ML Commons pick one named like the model.
    group: NonEmpty | None = "os-rerank"
    # Who may use the model group's models; None sends nothing (ML Commons' default).
    access: Access | None = None

    @model_validator(mode="after")
    def _access_needs_a_group(self) -> ModelConfig:
        if self.access is not None and self.group is None:
            raise ValueError("access needs group: access control applies to the model group os-rerank creates")
        return self


class IndexConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-+]*$", max_length=255)] = "my-test-data"
    # Field name -> mapping type of the text fields the sample documents carry.
    fields: dict[NonEmpty, FieldType] = Field(default_factory=lambda: {"passage_text": _TEXT})
    # JSONL file of sample documents (one JSON object per line), relative to the config file. None: the four
    # passages of the OpenSearch cross-encoder tutorial.
    documents: Path | None = None

    @field_validator("fields")
    @classmethod
    def _some_fields(cls, v: dict[str, FieldType]) -> dict[str, FieldType]:
        if not v:
            raise ValueError("needs at least one field")
        return v


class PipelineConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] = "rerank_pipeline_sagemaker"
    description: str = "Rerank with a SageMaker cross-encoder (managed by os-rerank)"
    document_fields: Annotated[list[NonEmpty], Field(min_length=1, max_length=50)] = Field(
        default_factory=lambda: ["passage_text"]
    )
    ignore_failure: bool = False
    # Rerank `oversample` times the hits a search asks for and return what it asked for, in the pipeline itself
    # (the oversample and truncate_hits processors); None: the pipeline reranks the page it is given (window.py).
    oversample: Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False)] | None = None


class VerifyConfig(_Strict):
    """The probe `verify` sends, and what it expects back."""

    query: NonEmpty = "What is the capital of the United States?"
    # Must be the top hit of the sample index for `query` after reranking; None skips that check.
    expected_top: str | None = "Washington, D.C."
    # Largest difference allowed between a score through OpenSearch (FLOAT32) and straight from the endpoint.
    tolerance: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-4


class AwsConfig(_Strict):
    profile: NonEmpty | None = None


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


class AutoscalingConfig(_Strict):
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)."""

    min: Annotated[int, Field(ge=1, le=100)] = 1
    max: Annotated[int, Field(ge=1, le=100)] = 2
    target_invocations_per_instance: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] = 100.0
    scale_in_cooldown: Annotated[int, Field(ge=0, le=86400)] = 300
    scale_out_cooldown: Annotated[int, Field(ge=0, le=86400)] = 60

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class DeployConfig(_Strict):
    """What `os-rerank endpoint deploy` puts on SageMaker under sagemaker.endpoint_name (see presets.py)."""

    preset: Literal[PRESET_NAMES] | None = None  # type: ignore[valid-type]
    hf_model_id: Annotated[str, Field(pattern=r"^[\w.-]+(/[\w.-]+)?$")] | None = None
    # Default: the Hugging Face PyTorch inference image for the region (aws_spec.default_image_uri).
    image_uri: NonEmpty | None = None
    # Default: the preset's instance type, else ml.m5.xlarge.
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")] | None = None
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # The role SageMaker assumes to pull the image and write logs; checked when `endpoint deploy` runs.
    execution_role_arn: str | None = None
    autoscaling: AutoscalingConfig | None = None
    variant_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")] = "AllTraffic"
    # What answers requests (presets.handler_for): `stock`, the toolkit's zero-code text-classification pipeline;
    # `os-rerank`, our handler packaged as code/inference.py in model.tar.gz on S3, for every contract; `auto`,
    # os-rerank's when sagemaker.contract is not the stock container's or model_dir is set (and image_uri is unset).
    handler: Literal["auto", "stock", "os-rerank"] = "auto"
    # A local model directory (save_pretrained: config, tokenizer, weights or model.onnx) packaged into
    # model.tar.gz with the handler, relative to the config file; instead of preset / hf_model_id.
    model_dir: NonEmpty | None = None
    # Where model.tar.gz goes. Default: the SageMaker default bucket sagemaker-<region>-<account id>, created when
    # missing as the SageMaker SDK does; a bucket named here must exist.
    s3_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = None
    s3_prefix: Annotated[str, Field(pattern=r"^[\w!.*'()/-]{1,200}$")] = "os-rerank"
    # Set: the section deploys an embedding model (model_dir or hf_model_id) with os-rerank's handler (mean pooling,
    # L2-normalised vectors) answering this embedding contract at sagemaker.endpoint_name; sagemaker.contract is then
    # not used. The SageMaker model gets OS_RERANK_EMBEDDING_CONTRACT instead of OS_RERANK_CONTRACT.
    embedding_contract: str | None = None

    @field_validator("embedding_contract")
    @classmethod
    def _embedding_contract(cls, v: str | None) -> str | None:
        from .embedding_contracts import EMBEDDING_CONTRACT_NAMES

        if v is not None and v not in EMBEDDING_CONTRACT_NAMES:
            raise ValueError(f"expected one of {', '.join(EMBEDDING_CONTRACT_NAMES)}, got {v!r}")
        return v

    @field_validator("execution_role_arn")
    @classmethod
    def _role_arn(cls, v: str | None) -> str | None:
        if v is not None and not _ROLE_ARN.match(v):
            raise ValueError(f"expected an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_model(self) -> DeployConfig:
        if self.embedding_contract is not None and (self.handler == "stock" or self.preset is not None):
            raise ValueError("embedding_contract deploys an embedding model with os-rerank's handler: set model_dir or "
                             "hf_model_id (presets are rerankers) and handler: os-rerank (or auto)")
        if sum(v is not None for v in (self.preset, self.hf_model_id, self.model_dir)) != 1:
            raise ValueError(f"set exactly one of preset ({', '.join(PRESET_NAMES)}), hf_model_id or model_dir")
        if self.model_dir is not None and self.handler == "stock":
            raise ValueError("model_dir is packaged with os-rerank's handler; set handler: os-rerank (or auto)")
        if self.s3_prefix.startswith("/") or self.s3_prefix.endswith("/") or "//" in self.s3_prefix:
            raise ValueError(f"s3_prefix: {self.s3_prefix!r} must not start or end with / or hold //")
        return self


class Config(_Strict):
    opensearch: OpenSearchConfig = OpenSearchConfig()
    sagemaker: SageMakerConfig
    connector: ConnectorConfig = ConnectorConfig()
    model: ModelConfig = ModelConfig()
    index: IndexConfig = IndexConfig()
    pipeline: PipelineConfig = PipelineConfig()
    verify: VerifyConfig = VerifyConfig()
    aws: AwsConfig = AwsConfig()
    deploy: DeployConfig | None = None
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
    missing = [f for f in config.pipeline.document_fields if f not in config.index.fields]
    if not missing:
        return []
    path = ("pipeline", "document_fields")
    where = f"{name}:{lines[path]}" if path in lines else name
    known = ", ".join(config.index.fields)
    return [f"{where}: pipeline.document_fields: {', '.join(missing)} not in index.fields ({known})"]
