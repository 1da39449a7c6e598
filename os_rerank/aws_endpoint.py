"""The SageMaker endpoint itself: deploy, inspect and delete it with boto3 (no SageMaker SDK).

With os-rerank's handler (model_artifact.uses_handler: every contract but the stock container's, or a local
model directory), the model also gets a model.tar.gz on S3 (model_archive.py, model_artifact.py), named by its
content hash, uploaded only when it is not there yet.

`endpoint deploy` is idempotent by name. It reads the endpoint, its endpoint config and model; when their settings
(image, environment, role, instance type and count, variant) already match the config, it writes nothing. A new
endpoint gets a model, an endpoint config and the endpoint; a changed one gets a new model and/or endpoint config,
named `<endpoint>-<content hash>`, and an `UpdateEndpoint` (SageMaker never changes an endpoint config in place).
Progress flows through `on_event`; every AWS operation sent is recorded in `AwsClients.calls` so tests can count
writes the way the cluster wrapper does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import AutoscalingConfig, Config
from .errors import AwsError, ConfigError
from .model_artifact import (
    Artifact,
    delete_artifact,
    delete_artifacts,
    ensure_artifact,
    handler_environment,
    owned_key,
    parse_s3_url,
    prepared_artifact,
    uses_handler,
)
from .model_artifact import hf_model_id as configured_model_id
from .presets import OS_RERANK, PRESETS, STOCK, contract_warnings

OnEvent = Callable[[str], None]

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
_SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_SETTLED = {"InService", "Failed", "OutOfService"}
_READ_PREFIXES = ("Describe", "List", "Get", "Head")

POLL_SECONDS = 15.0
TIMEOUT_SECONDS = 1800.0


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


# --- the clients ----------------------------------------------------------------------------------------------------


@dataclass
class AwsClients:
    """SageMaker, Application Auto Scaling, S3 and STS clients; `calls` names every operation sent, in order."""

    sagemaker: Any
    autoscaling: Any
    s3: Any = None
    sts: Any = None
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for client in (self.sagemaker, self.autoscaling, self.s3, self.sts):
            if client is not None:
                client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(_READ_PREFIXES)]


def aws_clients(config: Config) -> AwsClients:
    """Clients for config.sagemaker.region from the boto3 chain (aws.profile)."""
    from .credentials import aws_session

    session = aws_session(config)
    region = config.sagemaker.region
    return AwsClients(session.client("sagemaker", region_name=region),
                      session.client("application-autoscaling", region_name=region),
                      session.client("s3", region_name=region), session.client("sts", region_name=region))


def _aws_error(op: str, exc: Exception, *, role_arn: str | None = None) -> AwsError:
    """An AwsError for a failed call, with the fix for the failures users meet (role, credentials)."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return AwsError(f"{op}: no AWS credentials found",
                        fix="configure the boto3 chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an "
                        "instance role")
    if not isinstance(exc, ClientError):
        return AwsError(f"{op}: {exc}")
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Error"), error.get("Message", "")
    lowered = message.lower()
    if role_arn and "assume" in lowered and "role" in lowered:
        return AwsError(
            f"{op}: SageMaker cannot assume the execution role {role_arn}: {message}",
            fix="check that the role exists and its trust policy allows the principal sagemaker.amazonaws.com "
            "(sts:AssumeRole); set deploy.execution_role_arn",
        )
    if "iam:passrole" in lowered:
        return AwsError(
            f"{op}: you may not hand the execution role to SageMaker: {message}",
            fix="grant your own identity iam:PassRole on deploy.execution_role_arn",
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
        return AwsError(f"{op}: {code}: {message}", fix="refresh the AWS credentials of the boto3 chain")
    return AwsError(f"{op}: {code}: {message}")


def _is_missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    if error.get("Code") == "ObjectNotFoundException":  # Application Auto Scaling: "No scalable target registered"
        return True
    message = str(error.get("Message", "")).lower()
    return error.get("Code") in ("ValidationException", "ResourceNotFound") and (
        "could not find" in message or "not found" in message or "does not exist" in message
        or "no scalable target" in message  # moto's wording for a missing target
    )


def _call(op: str, fn: Callable[..., Any], *, missing_ok: bool = False, role_arn: str | None = None,
          **kwargs: Any) -> Any:
    """fn(**kwargs); None when the resource is missing and `missing_ok`; AwsError otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if missing_ok and _is_missing(exc):
            return None
        raise _aws_error(op, exc, role_arn=role_arn) from None


# --- reading --------------------------------------------------------------------------------------------------------


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
    endpoint = _call("DescribeEndpoint", sm.describe_endpoint, missing_ok=True, EndpointName=endpoint_name)
    if endpoint is None:
        return Deployed(None, None, {})
    config = _call("DescribeEndpointConfig", sm.describe_endpoint_config, missing_ok=True,
                   EndpointConfigName=endpoint["EndpointConfigName"])
    models: dict[str, dict[str, Any]] = {}
    for variant in (config or {}).get("ProductionVariants") or []:
        name = variant.get("ModelName")
        if name and name not in models:
            model = _call("DescribeModel", sm.describe_model, missing_ok=True, ModelName=name)
            if model is not None:
                models[name] = model
    return Deployed(endpoint, config, models)


def _differences(spec: EndpointSpec, deployed: Deployed) -> list[str]:
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


# --- waiting --------------------------------------------------------------------------------------------------------


def wait_for_endpoint(
    clients: AwsClients,
    name: str,
    *,
    on_event: OnEvent = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> dict[str, Any]:
    """DescribeEndpoint once it is InService; AwsError when it Failed (with FailureReason) or after `timeout`."""
    start = clock()
    while True:
        described = _call("DescribeEndpoint", clients.sagemaker.describe_endpoint, EndpointName=name)
        status = described.get("EndpointStatus", "?")
        elapsed = clock() - start
        on_event(f"endpoint {name}: {status} ({_duration(elapsed)})")
        if status == "InService":
            return dict(described)
        if status in ("Failed", "OutOfService"):
            reason = described.get("FailureReason") or "SageMaker gave no FailureReason"
            raise AwsError(
                f"endpoint {name} is {status}: {reason}",
                fix="see the endpoint's CloudWatch logs (/aws/sagemaker/Endpoints/" + name + "); fix the cause and "
                "run `os-rerank endpoint deploy` again (it replaces a Failed endpoint)",
            )
        if elapsed >= timeout:
            raise AwsError(
                f"endpoint {name} is still {status} after {_duration(elapsed)}",
                fix="run `os-rerank endpoint status` later, or `endpoint deploy --timeout SECONDS` to wait longer "
                "(deploying again resumes waiting; it creates nothing twice)",
            )
        sleep(poll)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# --- deploy ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """What `deploy_endpoint` did: outcome is created, updated, recreated or unchanged."""

    endpoint_name: str
    outcome: str
    status: str
    model_name: str
    config_name: str
    image_uri: str
    instance_type: str
    instance_count: int
    changes: tuple[str, ...]
    writes: tuple[str, ...]
    warnings: tuple[str, ...]
    model_data_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_name,
            "outcome": self.outcome,
            "status": self.status,
            "model": self.model_name,
            "endpoint_config": self.config_name,
            "image": self.image_uri,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "changes": list(self.changes),
            "writes": list(self.writes),
            "warnings": list(self.warnings),
            "model_data": self.model_data_url,
        }


def deploy_endpoint(
    config: Config,
    clients: AwsClients | None = None,
    *,
    on_event: OnEvent = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> DeployResult:
    """Make the endpoint of config.deploy exist, InService, with matching settings; writes only what differs."""
    spec = endpoint_spec(config)  # config errors before anything is built or called
    clients = clients or aws_clients(config)
    first_write = len(clients.calls)
    if spec.handler == OS_RERANK:
        with prepared_artifact(config, clients) as artifact:
            spec = endpoint_spec(config, artifact)
            ensure_artifact(clients, artifact, config.sagemaker.region, on_event)
    for warning in spec.warnings:
        on_event(f"warning: {warning}")
    wait: dict[str, Any] = {"on_event": on_event, "sleep": sleep, "clock": clock, "timeout": timeout, "poll": poll}

    deployed = read_deployed(clients, spec.endpoint_name)
    status = (deployed.endpoint or {}).get("EndpointStatus")
    if status is not None and status not in _SETTLED:
        on_event(f"endpoint {spec.endpoint_name} is {status}; waiting for it to settle")
        _wait_settled(clients, spec.endpoint_name, **wait)
        deployed = read_deployed(clients, spec.endpoint_name)
        status = (deployed.endpoint or {}).get("EndpointStatus")

    changes: list[str] = []
    if deployed.endpoint is None:
        outcome = "created"
        _ensure_model(clients, spec, on_event)
        _ensure_endpoint_config(clients, spec, on_event)
        on_event(f"creating endpoint {spec.endpoint_name} (config {spec.config_name})")
        _call("CreateEndpoint", clients.sagemaker.create_endpoint,
              EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
    elif status in ("Failed", "OutOfService"):
        outcome = "recreated"
        reason = deployed.endpoint.get("FailureReason") or "no reason given"
        changes.append(f"endpoint was {status} ({reason})")
        on_event(f"endpoint {spec.endpoint_name} is {status} ({reason}); deleting it to create it again")
        _call("DeleteEndpoint", clients.sagemaker.delete_endpoint, EndpointName=spec.endpoint_name)
        _wait_gone(clients, spec.endpoint_name, **wait)
        _ensure_model(clients, spec, on_event)
        _ensure_endpoint_config(clients, spec, on_event)
        on_event(f"creating endpoint {spec.endpoint_name} (config {spec.config_name})")
        _call("CreateEndpoint", clients.sagemaker.create_endpoint,
              EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
    else:
        changes = _differences(spec, deployed)
        if not changes:
            outcome = "unchanged"
            on_event(f"endpoint {spec.endpoint_name} is InService and matches the config; nothing to change")
        else:
            outcome = "updated"
            on_event(f"endpoint {spec.endpoint_name} differs: {'; '.join(changes)}")
            _ensure_model(clients, spec, on_event)
            _ensure_endpoint_config(clients, spec, on_event)
            # SageMaker refuses to change the instance type of a variant registered with Application Auto Scaling.
            had_target = _deregister_scaling(clients, spec, on_event)
            on_event(f"updating endpoint {spec.endpoint_name} to config {spec.config_name}")
            _call("UpdateEndpoint", clients.sagemaker.update_endpoint,
                  EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
            if had_target and spec.autoscaling is None:
                on_event("autoscaling was deregistered for the update and is not in the config; left off")

    described = dict(deployed.endpoint or {})
    if outcome != "unchanged":
        described = wait_for_endpoint(clients, spec.endpoint_name, **wait)
        if described.get("EndpointConfigName") != spec.config_name:
            reason = described.get("FailureReason") or "SageMaker rolled the update back"
            raise AwsError(
                f"endpoint {spec.endpoint_name} is InService but still on {described.get('EndpointConfigName')}: "
                f"{reason}",
                fix="see the endpoint's CloudWatch logs; fix the cause and deploy again",
            )
        if outcome == "updated":
            _delete_replaced(config, clients, spec, deployed, on_event)

    if spec.autoscaling is not None:
        _ensure_scaling(clients, spec, spec.autoscaling, on_event)

    return DeployResult(
        endpoint_name=spec.endpoint_name,
        outcome=outcome,
        status=str(described.get("EndpointStatus", "InService")),
        model_name=spec.model_name,
        config_name=spec.config_name,
        image_uri=spec.image_uri,
        instance_type=spec.instance_type,
        instance_count=spec.instance_count,
        changes=tuple(changes),
        writes=tuple(c for c in clients.calls[first_write:] if not c.startswith(_READ_PREFIXES)),
        warnings=spec.warnings,
        model_data_url=spec.model_data_url,
    )


def _wait_settled(clients: AwsClients, name: str, **wait: Any) -> None:
    # Failed is handled by the caller, which re-reads; a timeout is re-raised below.
    with contextlib.suppress(AwsError):
        wait_for_endpoint(clients, name, **wait)
    described = _call("DescribeEndpoint", clients.sagemaker.describe_endpoint, EndpointName=name)
    if described.get("EndpointStatus") not in _SETTLED:
        raise AwsError(f"endpoint {name} is still {described.get('EndpointStatus')}",
                       fix="wait for it to finish (`os-rerank endpoint status`), then deploy again")


def _wait_gone(
    clients: AwsClients,
    name: str,
    *,
    on_event: OnEvent,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    timeout: float,
    poll: float,
) -> None:
    start = clock()
    while True:
        described = _call("DescribeEndpoint", clients.sagemaker.describe_endpoint, missing_ok=True,
                          EndpointName=name)
        if described is None:
            return
        on_event(f"endpoint {name}: {described.get('EndpointStatus')} ({_duration(clock() - start)})")
        if clock() - start >= timeout:
            raise AwsError(f"endpoint {name} is still {described.get('EndpointStatus')} after "
                           f"{_duration(clock() - start)}")
        sleep(poll)


def _ensure_model(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> None:
    sm = clients.sagemaker
    if _call("DescribeModel", sm.describe_model, missing_ok=True, ModelName=spec.model_name) is not None:
        on_event(f"model {spec.model_name} exists")
        return
    what = spec.model_data_url or spec.environment.get("HF_MODEL_ID")
    if spec.model_data_url and "HF_MODEL_ID" in spec.environment:
        what = f"{spec.environment['HF_MODEL_ID']} with {spec.model_data_url}"
    on_event(f"creating model {spec.model_name} ({what} on {spec.image_uri})")
    _call("CreateModel", sm.create_model, role_arn=spec.role_arn, **create_model_params(spec))


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


def scaling_target_params(spec: EndpointSpec, want: AutoscalingConfig | None = None) -> dict[str, Any]:
    """RegisterScalableTarget's parameters (DeregisterScalableTarget's without `want`)."""
    params: dict[str, Any] = {"ServiceNamespace": "sagemaker", "ResourceId": spec.resource_id,
                              "ScalableDimension": _SCALABLE_DIMENSION}
    if want is not None:
        params.update(MinCapacity=want.min, MaxCapacity=want.max)
    return params


def scaling_policy_params(spec: EndpointSpec, want: AutoscalingConfig) -> dict[str, Any]:
    return {"PolicyName": spec.policy_name, "ServiceNamespace": "sagemaker", "ResourceId": spec.resource_id,
            "ScalableDimension": _SCALABLE_DIMENSION, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(want.target_invocations_per_instance),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": want.scale_in_cooldown,
                "ScaleOutCooldown": want.scale_out_cooldown,
            }}


def primary_container(spec: EndpointSpec) -> dict[str, Any]:
    """CreateModel's PrimaryContainer for `spec`."""
    container: dict[str, Any] = {"Image": spec.image_uri, "Environment": dict(spec.environment)}
    if spec.model_data_url is not None:
        container["ModelDataUrl"] = spec.model_data_url
    return container


def _ensure_endpoint_config(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> None:
    sm = clients.sagemaker
    existing = _call("DescribeEndpointConfig", sm.describe_endpoint_config, missing_ok=True,
                     EndpointConfigName=spec.config_name)
    if existing is not None:
        on_event(f"endpoint config {spec.config_name} exists")
        return
    on_event(f"creating endpoint config {spec.config_name} ({spec.instance_count} x {spec.instance_type})")
    _call("CreateEndpointConfig", sm.create_endpoint_config, **create_endpoint_config_params(spec))


def _owned(name: str, endpoint_name: str) -> bool:
    """Whether `name` is one os-rerank made for this endpoint (`<endpoint>-<8 hex>`)."""
    base = endpoint_name[:54].rstrip("-")
    suffix = name[len(base) + 1:]
    return name.startswith(base + "-") and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)


def _delete_replaced(config: Config, clients: AwsClients, spec: EndpointSpec, before: Deployed,
                     on_event: OnEvent) -> None:
    """Delete the endpoint config, model and archive the update replaced, when os-rerank made them."""
    sm = clients.sagemaker
    old_config = (before.endpoint_config or {}).get("EndpointConfigName")
    if old_config and old_config != spec.config_name and _owned(old_config, spec.endpoint_name):
        on_event(f"deleting replaced endpoint config {old_config}")
        _call("DeleteEndpointConfig", sm.delete_endpoint_config, missing_ok=True, EndpointConfigName=old_config)
    for model, described in before.models.items():
        if model != spec.model_name and _owned(model, spec.endpoint_name):
            on_event(f"deleting replaced model {model}")
            _call("DeleteModel", sm.delete_model, missing_ok=True, ModelName=model)
            old_data = replaced_artifact(config, spec, described)
            if old_data is not None and clients.s3 is not None:
                delete_artifact(clients, old_data, on_event)


def replaced_artifact(config: Config, spec: EndpointSpec, model: dict[str, Any]) -> str | None:
    """The s3:// URL of a replaced model's archive when os-rerank uploaded it for this endpoint, else None."""
    url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl")
    where = parse_s3_url(url) if isinstance(url, str) else None
    if where is None or url == spec.model_data_url or not owned_key(config, where[1]):
        return None
    return str(url)


# --- autoscaling ----------------------------------------------------------------------------------------------------


def read_scaling(clients: AwsClients, endpoint_name: str, variant_name: str) -> dict[str, Any] | None:
    """The variant's scalable target and target-tracking policy as {min, max, target, policy}; None if none."""
    aas = clients.autoscaling
    rid = f"endpoint/{endpoint_name}/variant/{variant_name}"
    targets = _call("DescribeScalableTargets", aas.describe_scalable_targets, ServiceNamespace="sagemaker",
                    ResourceIds=[rid], ScalableDimension=_SCALABLE_DIMENSION).get("ScalableTargets", [])
    if not targets:
        return None
    policies = _call("DescribeScalingPolicies", aas.describe_scaling_policies, ServiceNamespace="sagemaker",
                     ResourceId=rid, ScalableDimension=_SCALABLE_DIMENSION).get("ScalingPolicies", [])
    tracking = [p for p in policies if p.get("PolicyType") == "TargetTrackingScaling"]
    policy = tracking[0] if tracking else None
    conf = (policy or {}).get("TargetTrackingScalingPolicyConfiguration") or {}
    return {
        "min": targets[0].get("MinCapacity"),
        "max": targets[0].get("MaxCapacity"),
        "target": conf.get("TargetValue"),
        "metric": (conf.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType"),
        "policy": (policy or {}).get("PolicyName"),
        "scale_in_cooldown": conf.get("ScaleInCooldown"),
        "scale_out_cooldown": conf.get("ScaleOutCooldown"),
    }


def _ensure_scaling(clients: AwsClients, spec: EndpointSpec, want: AutoscalingConfig, on_event: OnEvent) -> None:
    aas = clients.autoscaling
    have = read_scaling(clients, spec.endpoint_name, spec.variant_name)
    if have is None or (have["min"], have["max"]) != (want.min, want.max):
        on_event(f"registering autoscaling {want.min}..{want.max} instances for {spec.resource_id}")
        _call("RegisterScalableTarget", aas.register_scalable_target, **scaling_target_params(spec, want))
    wanted = (spec.policy_name, "SageMakerVariantInvocationsPerInstance", float(want.target_invocations_per_instance),
              want.scale_in_cooldown, want.scale_out_cooldown)
    current = None if have is None else (have["policy"], have["metric"], have["target"], have["scale_in_cooldown"],
                                         have["scale_out_cooldown"])
    if current == wanted:
        on_event(f"autoscaling of {spec.resource_id} matches the config")
        return
    on_event(f"putting scaling policy {spec.policy_name}: {want.target_invocations_per_instance:g} invocations "
             "per instance per minute")
    _call("PutScalingPolicy", aas.put_scaling_policy, **scaling_policy_params(spec, want))


def _deregister_scaling(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> bool:
    """Deregister the variant's scalable target (and so its policies); whether there was one."""
    if read_scaling(clients, spec.endpoint_name, spec.variant_name) is None:
        return False
    on_event(f"deregistering autoscaling of {spec.resource_id}")
    _call("DeregisterScalableTarget", clients.autoscaling.deregister_scalable_target, missing_ok=True,
          **scaling_target_params(spec))
    return True


# --- status and delete ----------------------------------------------------------------------------------------------


def endpoint_status(config: Config, clients: AwsClients | None = None) -> dict[str, Any]:
    """The endpoint as SageMaker has it: status, config, model, image, instances, autoscaling (reads only)."""
    clients = clients or aws_clients(config)
    name = config.sagemaker.name
    deployed = read_deployed(clients, name)
    if deployed.endpoint is None:
        return {"endpoint": name, "region": config.sagemaker.region, "status": "missing"}
    endpoint = deployed.endpoint
    variant = deployed.variant or {}
    model = deployed.models.get(variant.get("ModelName", "")) or {}
    container = model.get("PrimaryContainer") or {}
    live: dict[str, Any] = next((v for v in endpoint.get("ProductionVariants") or []
                 if v.get("VariantName") == variant.get("VariantName")), {})
    out: dict[str, Any] = {
        "endpoint": name,
        "region": config.sagemaker.region,
        "status": endpoint.get("EndpointStatus"),
        "failure_reason": endpoint.get("FailureReason"),
        "endpoint_config": endpoint.get("EndpointConfigName"),
        "variant": variant.get("VariantName"),
        "model": variant.get("ModelName"),
        "image": container.get("Image"),
        "hf_model_id": (container.get("Environment") or {}).get("HF_MODEL_ID"),
        "model_data": container.get("ModelDataUrl"),
        "handler_contract": (container.get("Environment") or {}).get("OS_RERANK_CONTRACT"),
        "instance_type": variant.get("InstanceType"),
        "instance_count": live.get("CurrentInstanceCount", variant.get("InitialInstanceCount")),
        "autoscaling": read_scaling(clients, name, variant.get("VariantName") or "AllTraffic")
        if variant else None,
    }
    if config.deploy is not None and config.deploy.execution_role_arn:
        spec = endpoint_spec(config)
        out["differences_from_config"] = _differences(spec, deployed)
    return out


@dataclass(frozen=True)
class DeleteResult:
    deleted: tuple[str, ...]
    missing: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"deleted": list(self.deleted), "missing": list(self.missing)}


def delete_endpoint(
    config: Config,
    clients: AwsClients | None = None,
    *,
    on_event: OnEvent = lambda _: None,
) -> DeleteResult:
    """Delete the endpoint, its autoscaling, its endpoint config and model, and configs/models os-rerank made for it."""
    clients = clients or aws_clients(config)
    sm = clients.sagemaker
    name = config.sagemaker.name
    deployed = read_deployed(clients, name)
    deleted: list[str] = []
    missing: list[str] = []
    if deployed.endpoint is None:
        missing.append(f"endpoint {name}")
    else:
        variant = (deployed.variant or {}).get("VariantName")
        if variant and read_scaling(clients, name, variant) is not None:
            rid = f"endpoint/{name}/variant/{variant}"
            _call("DeregisterScalableTarget", clients.autoscaling.deregister_scalable_target, missing_ok=True,
                  ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=_SCALABLE_DIMENSION)
            deleted.append(f"autoscaling {rid}")
            on_event(f"deregistered autoscaling of {rid}")
        _call("DeleteEndpoint", sm.delete_endpoint, missing_ok=True, EndpointName=name)
        deleted.append(f"endpoint {name}")
        on_event(f"deleted endpoint {name}")
    configs = {str(deployed.endpoint["EndpointConfigName"])} if deployed.endpoint else set()
    listed = _call("ListEndpointConfigs", sm.list_endpoint_configs, NameContains=name[:54].rstrip("-"),
                   MaxResults=100).get("EndpointConfigs", [])
    configs |= {c["EndpointConfigName"] for c in listed if _owned(c["EndpointConfigName"], name)}
    models = set(deployed.models)
    listed_models = _call("ListModels", sm.list_models, NameContains=name[:54].rstrip("-"),
                          MaxResults=100).get("Models", [])
    models |= {m["ModelName"] for m in listed_models if _owned(m["ModelName"], name)}
    if config.deploy is not None and config.deploy.execution_role_arn:
        spec = endpoint_spec(config)
        configs.add(spec.config_name)
        models.add(spec.model_name)
    for config_name in sorted(configs):
        gone = _call("DeleteEndpointConfig", sm.delete_endpoint_config, missing_ok=True,
                     EndpointConfigName=config_name)
        (missing if gone is None else deleted).append(f"endpoint config {config_name}")
        if gone is not None:
            on_event(f"deleted endpoint config {config_name}")
    for model_name in sorted(models):
        gone = _call("DeleteModel", sm.delete_model, missing_ok=True, ModelName=model_name)
        (missing if gone is None else deleted).append(f"model {model_name}")
        if gone is not None:
            on_event(f"deleted model {model_name}")
    # Every archive os-rerank uploaded for this endpoint, also ones an earlier deploy left behind; S3 is not read
    # for an endpoint that never had one (a stock deploy needs no S3 permission).
    had_archive = any(isinstance(url := (m.get("PrimaryContainer") or {}).get("ModelDataUrl"), str)
                      and (where := parse_s3_url(url)) is not None and owned_key(config, where[1])
                      for m in deployed.models.values())
    if clients.s3 is not None and config.deploy is not None and (uses_handler(config) or had_archive):
        deleted += [f"s3 object {url}" for url in delete_artifacts(config, clients, on_event)]
    return DeleteResult(tuple(deleted), tuple(missing))

