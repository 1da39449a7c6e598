"""`endpoint deploy --dry-run`: what `deploy_endpoint` would write, from reads only.

Each step is one AWS write operation, named as `DeployResult.writes` names it, with its target, why, and the
exact parameters of the call (`params`, from the same builders deploy_endpoint sends, e.g. `create_model_params`;
S3 steps show the archive instead of its bytes); a matching endpoint gives one `no change` step. The decisions are
deploy_endpoint's own (the same spec, `differences`, `is_owned`, `replaced_artifact`), and
tests/test_aws_handler_deploy.py holds the plan to what a deploy then sends, operation by operation and parameter
by parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config
from .artifact import artifact_writes, prepared_artifact
from .calls import AwsClients, aws_clients, call_aws
from .presets import OS_RERANK
from .scaling import read_scaling, scaling_policy_params, scaling_target_params
from .spec import (
    SETTLED,
    EndpointSpec,
    create_endpoint_config_params,
    create_model_params,
    differences,
    endpoint_spec,
    is_owned,
    primary_container,
    read_deployed,
    replaced_artifact,
)

NO_CHANGE = "no change"


@dataclass(frozen=True)
class DeployStep:
    """One write `endpoint deploy` would send (or `no change`), with its target and reason."""

    operation: str
    target: str
    reason: str
    body: Any = None
    params: dict[str, Any] | None = None  # the call's exact parameters (SageMaker and Application Auto Scaling)

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "target": self.target, "reason": self.reason, "body": self.body,
                "params": self.params}


@dataclass(frozen=True)
class DeployPlan:
    endpoint_name: str
    handler: str
    model_name: str
    config_name: str
    model_data_url: str | None
    archive: dict[str, Any] | None
    steps: tuple[DeployStep, ...]
    warnings: tuple[str, ...]

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(s.operation for s in self.steps if s.operation != NO_CHANGE)

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint_name, "handler": self.handler, "model": self.model_name,
                "endpoint_config": self.config_name, "model_data": self.model_data_url, "archive": self.archive,
                "steps": [s.to_dict() for s in self.steps], "writes": list(self.writes),
                "warnings": list(self.warnings)}


def plan_deploy(config: Config, clients: AwsClients | None = None) -> DeployPlan:
    """The steps of `endpoint deploy` for this config, reading AWS only (the archive is built locally to hash it)."""
    spec = endpoint_spec(config)
    clients = clients or aws_clients(config)
    if spec.handler != OS_RERANK:
        return _plan(config, clients, spec, [], None)
    with prepared_artifact(config, clients) as artifact:
        spec = endpoint_spec(config, artifact)
        steps = [DeployStep(op, artifact.url if op == "PutObject" else f"s3://{artifact.bucket}", reason,
                            {"sha256": artifact.sha256, "size": artifact.size} if op == "PutObject" else None)
                 for op, reason in artifact_writes(clients, artifact)]
        archive = {"url": artifact.url, "sha256": artifact.sha256, "size": artifact.size,
                   "members": list(artifact.members)}
    return _plan(config, clients, spec, steps, archive)


def _plan(config: Config, clients: AwsClients, spec: EndpointSpec, steps: list[DeployStep],
          archive: dict[str, Any] | None) -> DeployPlan:
    sm = clients.sagemaker
    deployed = read_deployed(clients, spec.endpoint_name)
    status = (deployed.endpoint or {}).get("EndpointStatus")
    model_exists = call_aws("DescribeModel", sm.describe_model, missing_ok=True, ModelName=spec.model_name) is not None
    config_exists = call_aws("DescribeEndpointConfig", sm.describe_endpoint_config, missing_ok=True,
                             EndpointConfigName=spec.config_name) is not None

    def create_model_and_config() -> None:
        if not model_exists:
            steps.append(DeployStep("CreateModel", spec.model_name, "no model with these settings",
                                    {"PrimaryContainer": primary_container(spec), "ExecutionRoleArn": spec.role_arn},
                                    create_model_params(spec)))
        if not config_exists:
            steps.append(DeployStep("CreateEndpointConfig", spec.config_name,
                                    f"{spec.instance_count} x {spec.instance_type}",
                                    {"VariantName": spec.variant_name, "ModelName": spec.model_name,
                                     "InitialInstanceCount": spec.instance_count,
                                     "InstanceType": spec.instance_type}, create_endpoint_config_params(spec)))

    endpoint = {"EndpointName": spec.endpoint_name, "EndpointConfigName": spec.config_name}
    scaling = None
    if deployed.endpoint is None:
        create_model_and_config()
        steps.append(DeployStep("CreateEndpoint", spec.endpoint_name, "no such endpoint", params=endpoint))
    elif status is not None and status not in SETTLED:
        steps.append(DeployStep(NO_CHANGE, spec.endpoint_name, f"endpoint is {status}: deploy waits for it to "
                                "settle, then decides; plan again then"))
        return _done(spec, steps, archive)
    elif status in ("Failed", "OutOfService"):
        steps.append(DeployStep("DeleteEndpoint", spec.endpoint_name, f"endpoint is {status}",
                                params={"EndpointName": spec.endpoint_name}))
        create_model_and_config()
        steps.append(DeployStep("CreateEndpoint", spec.endpoint_name, "created again", params=endpoint))
    else:
        changes = differences(spec, deployed)
        scaling = read_scaling(clients, spec.endpoint_name, spec.variant_name)
        if not changes:
            steps.append(DeployStep(NO_CHANGE, spec.endpoint_name, "InService and matches the config"))
        else:
            create_model_and_config()
            if scaling is not None:
                steps.append(DeployStep("DeregisterScalableTarget", spec.resource_id,
                                        "SageMaker refuses to update a scaled variant's instance type",
                                        params=scaling_target_params(spec)))
                scaling = None
            steps.append(DeployStep("UpdateEndpoint", spec.endpoint_name, "; ".join(changes), params=endpoint))
            old_config = (deployed.endpoint_config or {}).get("EndpointConfigName")
            if old_config and old_config != spec.config_name and is_owned(old_config, spec.endpoint_name):
                steps.append(DeployStep("DeleteEndpointConfig", old_config, "replaced",
                                        params={"EndpointConfigName": old_config}))
            for model, described in deployed.models.items():
                if model != spec.model_name and is_owned(model, spec.endpoint_name):
                    steps.append(DeployStep("DeleteModel", model, "replaced", params={"ModelName": model}))
                    old_data = replaced_artifact(config, spec, described)
                    if old_data is not None and clients.s3 is not None:
                        steps.append(DeployStep("DeleteObject", old_data, "the replaced model's archive"))
    if spec.autoscaling is not None:
        want = spec.autoscaling
        if scaling is None or (scaling["min"], scaling["max"]) != (want.min, want.max):
            steps.append(DeployStep("RegisterScalableTarget", spec.resource_id, f"{want.min}..{want.max} instances",
                                    params=scaling_target_params(spec, want)))
        wanted = (spec.policy_name, "SageMakerVariantInvocationsPerInstance",
                  float(want.target_invocations_per_instance), want.scale_in_cooldown, want.scale_out_cooldown)
        current = None if scaling is None else (scaling["policy"], scaling["metric"], scaling["target"],
                                                scaling["scale_in_cooldown"], scaling["scale_out_cooldown"])
        if current != wanted:
            steps.append(DeployStep("PutScalingPolicy", spec.policy_name,
                                    f"{want.target_invocations_per_instance:g} invocations per instance per minute",
                                    params=scaling_policy_params(spec, want)))
    return _done(spec, steps, archive)


def _done(spec: EndpointSpec, steps: list[DeployStep], archive: dict[str, Any] | None) -> DeployPlan:
    return DeployPlan(endpoint_name=spec.endpoint_name, handler=spec.handler, model_name=spec.model_name,
                      config_name=spec.config_name, model_data_url=spec.model_data_url, archive=archive,
                      steps=tuple(steps), warnings=spec.warnings)
