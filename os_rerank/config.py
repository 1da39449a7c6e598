"""The configuration: strict pydantic models, loaded from one YAML file plus documented environment overrides.

Precedence, highest first: environment variables > the YAML file > defaults. Secrets never live in the YAML:
AWS credentials come from the boto3 chain, the OpenSearch password from OPENSEARCH_PASSWORD.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .contracts import CONTRACT_NAMES
from .embedding_contracts import EMBEDDING_CONTRACT_NAMES
from .errors import ConfigError
from .presets import PRESET_NAMES

# The environment variables that override the file, in the order the README documents them.
ENV_OVERRIDES: dict[str, str] = {
    "OPENSEARCH_URL": "opensearch.url",
    "OPENSEARCH_USERNAME": "opensearch.auth.username (and auth.type basic)",
    "OPENSEARCH_PASSWORD": "the basic-auth password (only ever from the environment)",
    "OPENSEARCH_CA_CERTS": "opensearch.ca_certs (the CA bundle that verifies the cluster's certificate)",
    "AWS_REGION": "sagemaker.region, and opensearch.auth.region for aws_sigv4",
    "AWS_PROFILE": "aws.profile",
}

# Keys that would put a secret in the file; each is refused with the place it should come from.
_SECRET_KEYS = {
    "password": "set OPENSEARCH_PASSWORD in the environment",
    "access_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "secret_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "session_token": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_access_key_id": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_secret_access_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_session_token": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
}

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
    # Default: the Hugging Face PyTorch inference image for the region (aws_endpoint.default_image_uri).
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

    @field_validator("execution_role_arn")
    @classmethod
    def _role_arn(cls, v: str | None) -> str | None:
        if v is not None and not _ROLE_ARN.match(v):
            raise ValueError(f"expected an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_model(self) -> DeployConfig:
        if sum(v is not None for v in (self.preset, self.hf_model_id, self.model_dir)) != 1:
            raise ValueError(f"set exactly one of preset ({', '.join(PRESET_NAMES)}), hf_model_id or model_dir")
        if self.model_dir is not None and self.handler == "stock":
            raise ValueError("model_dir is packaged with os-rerank's handler; set handler: os-rerank (or auto)")
        if self.s3_prefix.startswith("/") or self.s3_prefix.endswith("/") or "//" in self.s3_prefix:
            raise ValueError(f"s3_prefix: {self.s3_prefix!r} must not start or end with / or hold //")
        return self


class EmbeddingConfig(_Strict):
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

    @field_validator("endpoint_url", "local_endpoint_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return None if v is None else http_url(v)

    @model_validator(mode="after")
    def _name_known(self) -> EmbeddingConfig:
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

    def connector_url(self, region: str) -> str:
        """The URL in the embedding connector's predict action (`region`: the resolved one)."""
        if self.endpoint_url:
            return self.endpoint_url
        if self.local_endpoint_url:
            return f"{self.local_endpoint_url}/endpoints/{self.name}/invocations"
        suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
        return f"https://runtime.sagemaker.{region}{suffix}/endpoints/{self.name}/invocations"


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
    embedding: EmbeddingConfig | None = None
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


# Bounds on what a config file may be: it is a few dozen lines, and YAML can be made to explode.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000  # after aliases are expanded: a "billion laughs" file is refused before it is built


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """The validated Config from the YAML file at `path` with `env` overrides; ConfigError lists every problem."""
    path = Path(path)
    name = path.name
    text = _read_config(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}: nested too deeply to be a config file"]) from None
    if node is not None:
        problems = _shape_problems(node, name)
        if problems:
            raise ConfigError(problems)
    try:
        data = yaml.safe_load(text)  # bounded now: no duplicate keys, shallow, no exploding aliases
    except yaml.YAMLError as exc:  # composes, but does not construct (a tag such as !0)
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{name}:1: expected a mapping of sections (opensearch, sagemaker, ...) at the top"])
    lines = _line_index(node)
    problems = _secret_problems(data, name, lines)
    if problems:
        raise ConfigError(problems)
    data, password, from_env = _apply_env(data, dict(env or {}))
    try:
        config = Config.model_validate({**data, "source": path, "password": password})
    except ValidationError as exc:
        raise ConfigError([_format_error(err, name, lines, from_env) for err in exc.errors()]) from None
    problems = _cross_problems(config, name, lines)
    if problems:
        raise ConfigError(problems)
    return config


def _read_config(path: Path) -> str:
    """The file's text: a regular file of at most MAX_CONFIG_BYTES in UTF-8 (never /dev/zero read forever)."""
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], fix="pass --config with the path of your config file") from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([f"{path}: not a regular file"], fix="pass --config with the path of your config file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config file is a few dozen lines"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path.name}:{line}: not UTF-8 (byte {raw[exc.start]:#04x})"]) from None


def _shape_problems(root: yaml.Node, name: str) -> list[str]:
    """Duplicate keys (naming both lines), nesting deeper than MAX_DEPTH, more than MAX_NODES once aliases expand."""
    problems: list[str] = []
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:  # expanded node count, memoised per node (aliases share nodes)
        key = id(node)
        if key not in sizes:
            sizes[key] = 0  # a recursive alias counts once
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            sizes[key] = min(1 + sum(size(c) for c in children), MAX_NODES + 1)
        return sizes[key]

    def walk(node: yaml.Node, path: str, depth: int, seen: set[int]) -> None:
        if depth > MAX_DEPTH:
            problems.append(f"{name}:{node.start_mark.line + 1}: {path or '(top level)'}: nested deeper than "
                            f"{MAX_DEPTH} levels")
            return
        if id(node) in seen:
            return  # an alias walked already: its keys were checked there
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                label = str(key.value) if isinstance(key, yaml.ScalarNode) else "(complex key)"
                line = key.start_mark.line + 1
                if label in first:
                    dotted = f"{path}.{label}" if path else label
                    problems.append(f"{name}:{line}: {dotted}: duplicate key (first at line {first[label]}); "
                                    "YAML would silently keep only the last one")
                else:
                    first[label] = line
                walk(value, f"{path}.{label}" if path else label, depth + 1, seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}.{i}", depth + 1, seen)

    try:
        walk(root, "", 0, set())
        if not problems and size(root) > MAX_NODES:
            problems.append(f"{name}: expands to more than {MAX_NODES} values once its aliases are followed "
                            "(an alias bomb?); a config file needs a few dozen")
    except RecursionError:
        problems.append(f"{name}: nested too deeply to be a config file")
    return problems


def _cross_problems(config: Config, name: str, lines: dict[tuple[str, ...], int]) -> list[str]:
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
    return out


def _apply_env(data: dict[str, Any], env: dict[str, str]
               ) -> tuple[dict[str, Any], SecretStr | None, dict[tuple[str, ...], str]]:
    """The YAML data with environment overrides applied (env wins), the password if one is set, and which config
    paths came from which variable (so an error in one names the variable, not a line of the file)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    from_env: dict[tuple[str, ...], str] = {}
    opensearch = data.setdefault("opensearch", {})
    if not isinstance(opensearch, dict):
        return data, None, from_env  # the model reports the wrong type with its path
    if env.get("OPENSEARCH_URL"):
        opensearch["url"] = env["OPENSEARCH_URL"]
        from_env[("opensearch", "url")] = "OPENSEARCH_URL"
    if env.get("OPENSEARCH_CA_CERTS"):
        opensearch["ca_certs"] = env["OPENSEARCH_CA_CERTS"]
        from_env[("opensearch", "ca_certs")] = "OPENSEARCH_CA_CERTS"
    auth = opensearch.get("auth")
    auth = dict(auth) if isinstance(auth, dict) else ({} if auth is None else auth)
    if env.get("OPENSEARCH_USERNAME") and isinstance(auth, dict):
        auth["type"] = "basic"
        auth["username"] = env["OPENSEARCH_USERNAME"]
        from_env[("opensearch", "auth", "username")] = "OPENSEARCH_USERNAME"
    if env.get("AWS_REGION") and isinstance(auth, dict) and auth.get("type") == "aws_sigv4":
        auth["region"] = env["AWS_REGION"]
        from_env[("opensearch", "auth", "region")] = "AWS_REGION"
    if auth:
        opensearch["auth"] = auth
    sagemaker = data.get("sagemaker")
    if env.get("AWS_REGION"):
        if sagemaker is None:
            sagemaker = data["sagemaker"] = {}
        if isinstance(sagemaker, dict):
            sagemaker["region"] = env["AWS_REGION"]
            from_env[("sagemaker", "region")] = "AWS_REGION"
    if env.get("AWS_PROFILE"):
        aws = data.setdefault("aws", {})
        if isinstance(aws, dict):
            aws["profile"] = env["AWS_PROFILE"]
            from_env[("aws", "profile")] = "AWS_PROFILE"
    password = SecretStr(env["OPENSEARCH_PASSWORD"]) if env.get("OPENSEARCH_PASSWORD") else None
    return data, password, from_env


def _line_index(node: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key path in the YAML document."""
    out: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                sub = (*path, str(key.value))
                out[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    if node is not None:
        walk(node, ())
    return out


def _secret_problems(data: Any, name: str, lines: dict[tuple[str, ...], int], path: tuple[str, ...] = ()) -> list[str]:
    problems: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            sub = (*path, str(key))
            if str(key).lower() in _SECRET_KEYS:
                where = f"{name}:{lines[sub]}" if sub in lines else name
                problems.append(
                    f"{where}: {'.'.join(sub)}: secrets are never read from the config file; "
                    f"{_SECRET_KEYS[str(key).lower()]}"
                )
            else:
                problems.extend(_secret_problems(value, name, lines, sub))
    return problems


def _format_error(err: Any, name: str, lines: dict[tuple[str, ...], int],
                  from_env: dict[tuple[str, ...], str] | None = None) -> str:
    """One line for one pydantic error: `file[:line]: dotted.path: message`, or `VARIABLE (environment): ...`."""
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in {"none", "basic", "aws_sigv4"})]
    kind = err["type"]
    # A tagged union reports the tag in the location; it is noise for a reader.
    path = tuple(loc)
    line = None
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            line = lines[path[:cut]]
            break
    variable = next((v for p, v in (from_env or {}).items() if path[: len(p)] == p), None)
    if variable is not None:
        where = f"{variable} (environment)"
    else:
        where = f"{name}:{line}" if line is not None and kind != "missing" else name
    dotted = ".".join(loc) or "(top level)"
    ctx = err.get("ctx") or {}
    if kind == "missing":
        message = "field required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "literal_error":
        message = f"must be one of {ctx.get('expected', '')}"
    elif kind == "union_tag_invalid":
        message = f"type must be one of {ctx.get('expected_tags', '')}"
    elif kind == "union_tag_not_found":
        message = "needs a 'type' (none, basic or aws_sigv4)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping of fields, got {type(err.get('input')).__name__}"
    elif kind == "string_pattern_mismatch":
        message = f"invalid value {err.get('input')!r}"
    elif kind == "finite_number":
        message = "must be a finite number"
    elif kind == "path_type":
        message = f"expected a file path, got {type(err.get('input')).__name__}"
    elif kind in {"value_error", "assertion_error"}:
        message = str(ctx.get("error", err["msg"]))
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
    return f"{where}: {dotted}: {message}"
