"""The endpoint's autoscaling: one scalable target and one target-tracking policy on invocations per instance."""

from __future__ import annotations

from typing import Any

from ..config_deploy import AutoscalingConfig
from ..events import OnEvent, note
from .calls import AwsClients, call_aws
from .spec import EndpointSpec

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def read_scaling(clients: AwsClients, endpoint_name: str, variant_name: str) -> dict[str, Any] | None:
    """The variant's scalable target and target-tracking policy as {min, max, target, policy}; None if none."""
    aas = clients.autoscaling
    rid = f"endpoint/{endpoint_name}/variant/{variant_name}"
    targets = call_aws("DescribeScalableTargets", aas.describe_scalable_targets, ServiceNamespace="sagemaker",
                       ResourceIds=[rid], ScalableDimension=SCALABLE_DIMENSION).get("ScalableTargets", [])
    if not targets:
        return None
    policies = call_aws("DescribeScalingPolicies", aas.describe_scaling_policies, ServiceNamespace="sagemaker",
                        ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION).get("ScalingPolicies", [])
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


def ensure_scaling(clients: AwsClients, spec: EndpointSpec, want: AutoscalingConfig, on_event: OnEvent) -> None:
    aas = clients.autoscaling
    have = read_scaling(clients, spec.endpoint_name, spec.variant_name)
    if have is None or (have["min"], have["max"]) != (want.min, want.max):
        on_event(note(f"registering autoscaling {want.min}..{want.max} instances for {spec.resource_id}"))
        call_aws("RegisterScalableTarget", aas.register_scalable_target, **scaling_target_params(spec, want))
    wanted = (spec.policy_name, "SageMakerVariantInvocationsPerInstance", float(want.target_invocations_per_instance),
              want.scale_in_cooldown, want.scale_out_cooldown)
    current = None if have is None else (have["policy"], have["metric"], have["target"], have["scale_in_cooldown"],
                                         have["scale_out_cooldown"])
    if current == wanted:
        on_event(note(f"autoscaling of {spec.resource_id} matches the config"))
        return
    on_event(note(f"putting scaling policy {spec.policy_name}: {want.target_invocations_per_instance:g} invocations "
             "per instance per minute"))
    call_aws("PutScalingPolicy", aas.put_scaling_policy, **scaling_policy_params(spec, want))


def deregister_scaling(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> bool:
    """Deregister the variant's scalable target (and so its policies); whether there was one."""
    if read_scaling(clients, spec.endpoint_name, spec.variant_name) is None:
        return False
    on_event(note(f"deregistering autoscaling of {spec.resource_id}"))
    call_aws("DeregisterScalableTarget", clients.autoscaling.deregister_scalable_target, missing_ok=True,
             **scaling_target_params(spec))
    return True


# The parameters of each write, built once: `deploy_endpoint` sends them and `endpoint deploy --dry-run` shows them.
def scaling_target_params(spec: EndpointSpec, want: AutoscalingConfig | None = None) -> dict[str, Any]:
    """RegisterScalableTarget's parameters (DeregisterScalableTarget's without `want`)."""
    params: dict[str, Any] = {"ServiceNamespace": "sagemaker", "ResourceId": spec.resource_id,
                              "ScalableDimension": SCALABLE_DIMENSION}
    if want is not None:
        params.update(MinCapacity=want.min, MaxCapacity=want.max)
    return params


def scaling_policy_params(spec: EndpointSpec, want: AutoscalingConfig) -> dict[str, Any]:
    return {"PolicyName": spec.policy_name, "ServiceNamespace": "sagemaker", "ResourceId": spec.resource_id,
            "ScalableDimension": SCALABLE_DIMENSION, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(want.target_invocations_per_instance),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": want.scale_in_cooldown,
                "ScaleOutCooldown": want.scale_out_cooldown,
            }}
