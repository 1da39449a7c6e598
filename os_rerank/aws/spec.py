"""The endpoint os-rerank deploys, as data: the desired spec from the config, what SageMaker has, how they differ.

Reads only. The model and endpoint config are named `<endpoint>-<content hash>`, so a changed setting gets a new
name (SageMaker never changes an endpoint config in place) and an unchanged one finds its own resource again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..config_deploy import AutoscalingConfig
from ..errors import ConfigError
from .artifact import Artifact, handler_environment, owned_key, parse_s3_url, uses_handler
from .artifact import hf_model_id as configured_model_id
from .calls import AwsClients, call_aws
from .presets import OS_RERANK, PRESETS, STOCK, contract_warnings

# The Hugging Face PyTorch inference DLC the seeds deploy with the SageMaker SDK (transformers 4.37.0, PyTorch
# 2.1.0, py310). Tags and registries follow the SageMaker SDK's image_uri_config/huggingface.json; the GPU image is
# built on CUDA 11.8 / Ubuntu 20.04, the CPU one on Ubuntu 22.04.
HF_TRANSFORMERS_VERSION = "4.37.0"
HF_PYTORCH_VERSION = "2.1.0"
HF_PY_VERSION = "py310"
_OS_TAG = {"cpu": "ubuntu22.04", "gpu": "cu118-ubuntu20.04"}
_DEFAULT_REGISTRY = "763104351884"
# Regions whose Deep Learning Containers live in another account than 763104351884.
_REGISTRIES = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
_GPU_FAMILIES = ("ml.g", "ml.p")
_NEURON_FAMILIES = ("ml.inf", "ml.trn")
SETTLED = {"InService", "Failed", "OutOfService"}


def default_image_uri(region: str, instance_type: str) -> str:
    """The Hugging Face PyTorch inference image URI for `region`, cpu or gpu by instance family."""
    if instance_type.startswith(_NEURON_FAMILIES):
        raise ConfigError(
            [f"deploy.instance_type: {instance_type} needs a Neuron image, which has no default here"],
            fix="set deploy.image_uri to a huggingface-pytorch-inference-neuronx image, or use ml.m*, ml.c* or ml.g*",
        )
    device = "gpu" if instance_type.startswith(_GPU_FAMILIES) else "cpu"
    account = _REGISTRIES.get(region, _DEFAULT_REGISTRY)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    tag = f"{HF_PYTORCH_VERSION}-transformers{HF_TRANSFORMERS_VERSION}-{device}-{HF_PY_VERSION}-{_OS_TAG[device]}"
    return f"{account}.dkr.ecr.{region}.{domain}/huggingface-pytorch-inference:{tag}"


@dataclass(frozen=True)
class EndpointSpec:
    """Everything `endpoint deploy` creates, with the content-hashed names of the model and endpoint config."""

    region: str
    endpoint_name: str
    model_name: str
    config_name: str
    image_uri: str
    environment: dict[str, str]
    role_arn: str
    instance_type: str
    instance_count: int
    variant_name: str
    autoscaling: AutoscalingConfig | None
    warnings: tuple[str, ...] = ()
    # os-rerank's handler: the archive's s3:// URL (None for the stock container, or when not built: status).
    model_data_url: str | None = None
    handler: str = STOCK

    @property
    def resource_id(self) -> str:
        """The Application Auto Scaling resource id of the variant."""
        return f"endpoint/{self.endpoint_name}/variant/{self.variant_name}"

    @property
    def policy_name(self) -> str:
        return f"{self.endpoint_name}-invocations-per-instance"


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:8]


def endpoint_spec(config: Config, artifact: Artifact | None = None) -> EndpointSpec:
    """The desired endpoint from config.deploy; ConfigError when the section or the execution role is missing.

    With os-rerank's handler, `artifact` is the archive on S3; without it (status) the model's name and data URL
    cannot be known, and only the other settings are compared."""
    deploy = config.deploy
    where = config.source.name
    if deploy is None:
        raise ConfigError(
            [f"{where}: deploy: section missing; `endpoint deploy` needs to know what to deploy"],
            fix="add a deploy: section (see config.example.yaml), e.g. preset: ms-marco-minilm-l6",
        )
    if not deploy.execution_role_arn:
        raise ConfigError(
            [f"{where}: deploy.execution_role_arn: field required to deploy"],
            fix="set deploy.execution_role_arn to an IAM role that trusts sagemaker.amazonaws.com "
            "(e.g. with the AmazonSageMakerFullAccess policy)",
        )
    preset = PRESETS[deploy.preset] if deploy.preset else None
    region = config.sagemaker.region
    instance_type = deploy.instance_type or (preset.instance_type if preset else DEFAULT_INSTANCE_TYPE)
    image_uri = deploy.image_uri or default_image_uri(region, instance_type)
    handler = OS_RERANK if uses_handler(config) else STOCK
    model_data_url = artifact.url if artifact is not None and handler == OS_RERANK else None
    if handler == OS_RERANK:
        environment = handler_environment(config)
    else:
        environment = {"HF_MODEL_ID": str(configured_model_id(config)), "HF_TASK": "text-classification"}
    endpoint = config.sagemaker.name
    base = endpoint[:54].rstrip("-")
    # The stock model's hash input is unchanged from before the handler existed, so its deployed names still match.
    model_key: list[Any] = [image_uri, environment, deploy.execution_role_arn]
    if model_data_url is not None:
        model_key.append(model_data_url)
    model_name = f"{base}-{_short_hash(model_key)}"
    config_name = f"{base}-{_short_hash([model_name, instance_type, deploy.instance_count, deploy.variant_name])}"
    warnings = contract_warnings(preset, config.sagemaker.contract, custom_image=deploy.image_uri is not None,
                                 handler=handler)
    model_dir = config.deploy_model_dir
    if handler == OS_RERANK and model_dir is not None and deploy.image_uri is None and model_dir.is_dir():
        names = [p.name for p in model_dir.iterdir()]
        if not any(n.endswith((".safetensors", ".bin")) for n in names):
            warnings.append(f"deploy.model_dir {model_dir} holds no torch weights (*.safetensors, *.bin): the "
                            "Hugging Face DLC has torch but not onnxruntime, so an ONNX-only model will not load "
                            "there; add the weights, or set deploy.image_uri to an image with onnxruntime")
    return EndpointSpec(
        region=region,
        endpoint_name=endpoint,
        model_name=model_name,
        config_name=config_name,
        image_uri=image_uri,
        environment=environment,
        role_arn=deploy.execution_role_arn,
        instance_type=instance_type,
        instance_count=deploy.instance_count,
        variant_name=deploy.variant_name,
        autoscaling=deploy.autoscaling,
        warnings=tuple(warnings),
        model_data_url=model_data_url,
        handler=handler,
    )


def primary_container(spec: EndpointSpec) -> dict[str, Any]:
    """CreateModel's PrimaryContainer for `spec`."""
    container: dict[str, Any] = {"Image": spec.image_uri, "Environment": dict(spec.environment)}
    if spec.model_data_url is not None:
        container["ModelDataUrl"] = spec.model_data_url
    return container


# The parameters of each write, built once: `deploy_endpoint` sends them and `endpoint deploy --dry-run` shows them.
def create_model_params(spec: EndpointSpec) -> dict[str, Any]:
    return {"ModelName": spec.model_name, "PrimaryContainer": primary_container(spec),
            "ExecutionRoleArn": spec.role_arn}


def create_endpoint_config_params(spec: EndpointSpec) -> dict[str, Any]:
    return {"EndpointConfigName": spec.config_name, "ProductionVariants": [{
        "VariantName": spec.variant_name,
        "ModelName": spec.model_name,
        "InitialInstanceCount": spec.instance_count,
        "InstanceType": spec.instance_type,
        "InitialVariantWeight": 1.0,
    }]}


def is_owned(name: str, endpoint_name: str) -> bool:
    """Whether `name` is one os-rerank made for this endpoint (`<endpoint>-<8 hex>`)."""
    base = endpoint_name[:54].rstrip("-")
    suffix = name[len(base) + 1:]
    return name.startswith(base + "-") and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)


def replaced_artifact(config: Config, spec: EndpointSpec, model: dict[str, Any]) -> str | None:
    """The s3:// URL of a replaced model's archive when os-rerank uploaded it for this endpoint, else None."""
    url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl")
    where = parse_s3_url(url) if isinstance(url, str) else None
    if where is None or url == spec.model_data_url or not owned_key(config, where[1]):
        return None
    return str(url)


# --- what SageMaker has -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """What SageMaker has under one endpoint name; None fields are missing."""

    endpoint: dict[str, Any] | None
    endpoint_config: dict[str, Any] | None
    models: dict[str, dict[str, Any]]

    @property
    def variant(self) -> dict[str, Any] | None:
        variants = (self.endpoint_config or {}).get("ProductionVariants") or []
        return variants[0] if variants else None


def read_deployed(clients: AwsClients, endpoint_name: str) -> Deployed:
    """The endpoint, its current endpoint config and the models of that config (Describe calls only)."""
    sm = clients.sagemaker
    endpoint = call_aws("DescribeEndpoint", sm.describe_endpoint, missing_ok=True, EndpointName=endpoint_name)
    if endpoint is None:
        return Deployed(None, None, {})
    config = call_aws("DescribeEndpointConfig", sm.describe_endpoint_config, missing_ok=True,
                      EndpointConfigName=endpoint["EndpointConfigName"])
    models: dict[str, dict[str, Any]] = {}
    for variant in (config or {}).get("ProductionVariants") or []:
        name = variant.get("ModelName")
        if name and name not in models:
            model = call_aws("DescribeModel", sm.describe_model, missing_ok=True, ModelName=name)
            if model is not None:
                models[name] = model
    return Deployed(endpoint, config, models)


def differences(spec: EndpointSpec, deployed: Deployed) -> list[str]:
    """How the deployed endpoint differs from `spec`; empty when it matches."""
    variants = (deployed.endpoint_config or {}).get("ProductionVariants") or []
    if len(variants) != 1:
        return [f"endpoint config has {len(variants)} production variants, expected 1"]
    variant = variants[0]
    out = []
    for what, have, want in (
        ("variant name", variant.get("VariantName"), spec.variant_name),
        ("instance type", variant.get("InstanceType"), spec.instance_type),
        ("instance count", variant.get("InitialInstanceCount"), spec.instance_count),
    ):
        if have != want:
            out.append(f"{what} {have} -> {want}")
    model = deployed.models.get(variant.get("ModelName", ""))
    if model is None:
        return [*out, f"model {variant.get('ModelName')} is missing"]
    container = model.get("PrimaryContainer") or {}
    checks: tuple[tuple[str, Any, Any], ...] = (
        ("image", container.get("Image"), spec.image_uri),
        ("environment", container.get("Environment") or {}, spec.environment),
        ("execution role", model.get("ExecutionRoleArn"), spec.role_arn),
    )
    if spec.model_data_url is not None or spec.handler == STOCK:
        checks += (("model data", container.get("ModelDataUrl"), spec.model_data_url),)
    for what, have, want in checks:
        if have != want:
            out.append(f"{what} {have} -> {want}")
    return out
