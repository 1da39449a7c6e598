"""The SageMaker endpoint itself: deploy, inspect and delete it with boto3 (no SageMaker SDK).

This module is the endpoint's public face: `endpoint status` and `endpoint delete` live here, and the names of the
modules it is built from (aws_calls: clients and errors; aws_spec: the desired endpoint and what SageMaker has;
aws_scaling: autoscaling; aws_deploy: `endpoint deploy`) are importable from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..events import OnEvent, ignore, note
from .artifact import delete_artifacts, owned_key, parse_s3_url, uses_handler
from .calls import READ_PREFIXES, AwsClients, aws_clients, aws_error, call_aws, is_missing
from .deploy import POLL_SECONDS, TIMEOUT_SECONDS, DeployResult, deploy_endpoint, wait_for_endpoint
from .scaling import SCALABLE_DIMENSION, read_scaling
from .spec import (
    DEFAULT_INSTANCE_TYPE,
    SETTLED,
    Deployed,
    EndpointSpec,
    default_image_uri,
    differences,
    endpoint_spec,
    is_owned,
    primary_container,
    read_deployed,
    replaced_artifact,
)

__all__ = [
    "DEFAULT_INSTANCE_TYPE", "POLL_SECONDS", "READ_PREFIXES", "SCALABLE_DIMENSION", "SETTLED", "TIMEOUT_SECONDS",
    "AwsClients", "DeleteResult", "DeployResult", "Deployed", "EndpointSpec", "aws_clients", "aws_error", "call_aws",
    "default_image_uri", "delete_endpoint", "deploy_endpoint", "differences", "endpoint_spec", "endpoint_status",
    "is_missing", "is_owned", "primary_container", "read_deployed", "read_scaling", "replaced_artifact",
    "wait_for_endpoint",
]


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
        "handler_contract": (container.get("Environment") or {}).get("OS_RERANK_CONTRACT")
        or (container.get("Environment") or {}).get("OS_RERANK_EMBEDDING_CONTRACT"),
        "instance_type": variant.get("InstanceType"),
        "instance_count": live.get("CurrentInstanceCount", variant.get("InitialInstanceCount")),
        "autoscaling": read_scaling(clients, name, variant.get("VariantName") or "AllTraffic")
        if variant else None,
    }
    if config.deploy is not None and config.deploy.execution_role_arn:
        spec = endpoint_spec(config)
        out["differences_from_config"] = differences(spec, deployed)
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
    on_event: OnEvent = ignore,
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
            call_aws("DeregisterScalableTarget", clients.autoscaling.deregister_scalable_target, missing_ok=True,
                     ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION)
            deleted.append(f"autoscaling {rid}")
            on_event(note(f"deregistered autoscaling of {rid}"))
        call_aws("DeleteEndpoint", sm.delete_endpoint, missing_ok=True, EndpointName=name)
        deleted.append(f"endpoint {name}")
        on_event(note(f"deleted endpoint {name}"))
    configs = {str(deployed.endpoint["EndpointConfigName"])} if deployed.endpoint else set()
    listed = call_aws("ListEndpointConfigs", sm.list_endpoint_configs, NameContains=name[:54].rstrip("-"),
                      MaxResults=100).get("EndpointConfigs", [])
    configs |= {c["EndpointConfigName"] for c in listed if is_owned(c["EndpointConfigName"], name)}
    models = set(deployed.models)
    listed_models = call_aws("ListModels", sm.list_models, NameContains=name[:54].rstrip("-"),
                             MaxResults=100).get("Models", [])
    models |= {m["ModelName"] for m in listed_models if is_owned(m["ModelName"], name)}
    if config.deploy is not None and config.deploy.execution_role_arn:
        spec = endpoint_spec(config)
        configs.add(spec.config_name)
        models.add(spec.model_name)
    for config_name in sorted(configs):
        gone = call_aws("DeleteEndpointConfig", sm.delete_endpoint_config, missing_ok=True,
                        EndpointConfigName=config_name)
        (missing if gone is None else deleted).append(f"endpoint config {config_name}")
        if gone is not None:
            on_event(note(f"deleted endpoint config {config_name}"))
    for model_name in sorted(models):
        gone = call_aws("DeleteModel", sm.delete_model, missing_ok=True, ModelName=model_name)
        (missing if gone is None else deleted).append(f"model {model_name}")
        if gone is not None:
            on_event(note(f"deleted model {model_name}"))
    # Every archive os-rerank uploaded for this endpoint, also ones an earlier deploy left behind; S3 is not read
    # for an endpoint that never had one (a stock deploy needs no S3 permission).
    had_archive = any(isinstance(url := (m.get("PrimaryContainer") or {}).get("ModelDataUrl"), str)
                      and (where := parse_s3_url(url)) is not None and owned_key(config, where[1])
                      for m in deployed.models.values())
    if clients.s3 is not None and config.deploy is not None and (uses_handler(config) or had_archive):
        deleted += [f"s3 object {url}" for url in delete_artifacts(config, clients, on_event)]
    return DeleteResult(tuple(deleted), tuple(missing))
