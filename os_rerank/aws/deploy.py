"""`endpoint deploy`: make the endpoint of config.deploy exist, InService, with matching settings.

With os-rerank's handler (artifact.uses_handler: every contract but the stock container's, or a local
model directory), the model also gets a model.tar.gz on S3 (archive.py, artifact.py), named by its
content hash, uploaded only when it is not there yet.

Idempotent by name: it reads the endpoint, its endpoint config and model; when their settings (image,
environment, role, instance type and count, variant) already match the config, it writes nothing. A new endpoint
gets a model, an endpoint config and the endpoint; a changed one gets a new model and/or endpoint config
(aws_spec.py names them) and an `UpdateEndpoint`. Progress flows through `on_event`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import AwsError
from ..events import OnEvent, ignore, note
from .artifact import delete_artifact, ensure_artifact, prepared_artifact
from .calls import READ_PREFIXES, AwsClients, aws_clients, call_aws
from .presets import OS_RERANK
from .scaling import deregister_scaling, ensure_scaling
from .spec import (
    SETTLED,
    Deployed,
    EndpointSpec,
    create_endpoint_config_params,
    create_model_params,
    differences,
    endpoint_spec,
    is_owned,
    read_deployed,
    replaced_artifact,
)

POLL_SECONDS = 15.0
TIMEOUT_SECONDS = 1800.0


def wait_for_endpoint(
    clients: AwsClients,
    name: str,
    *,
    on_event: OnEvent = ignore,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> dict[str, Any]:
    """DescribeEndpoint once it is InService; AwsError when it Failed (with FailureReason) or after `timeout`."""
    start = clock()
    while True:
        described = call_aws("DescribeEndpoint", clients.sagemaker.describe_endpoint, EndpointName=name)
        status = described.get("EndpointStatus", "?")
        elapsed = clock() - start
        on_event(note(f"endpoint {name}: {status} ({_duration(elapsed)})"))
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
    on_event: OnEvent = ignore,
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
        on_event(note(f"warning: {warning}"))
    wait: dict[str, Any] = {"on_event": on_event, "sleep": sleep, "clock": clock, "timeout": timeout, "poll": poll}

    deployed = read_deployed(clients, spec.endpoint_name)
    status = (deployed.endpoint or {}).get("EndpointStatus")
    if status is not None and status not in SETTLED:
        on_event(note(f"endpoint {spec.endpoint_name} is {status}; waiting for it to settle"))
        _wait_settled(clients, spec.endpoint_name, **wait)
        deployed = read_deployed(clients, spec.endpoint_name)
        status = (deployed.endpoint or {}).get("EndpointStatus")

    changes: list[str] = []
    if deployed.endpoint is None:
        outcome = "created"
        _ensure_model(clients, spec, on_event)
        _ensure_endpoint_config(clients, spec, on_event)
        on_event(note(f"creating endpoint {spec.endpoint_name} (config {spec.config_name})"))
        call_aws("CreateEndpoint", clients.sagemaker.create_endpoint,
                 EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
    elif status in ("Failed", "OutOfService"):
        outcome = "recreated"
        reason = deployed.endpoint.get("FailureReason") or "no reason given"
        changes.append(f"endpoint was {status} ({reason})")
        on_event(note(f"endpoint {spec.endpoint_name} is {status} ({reason}); deleting it to create it again"))
        call_aws("DeleteEndpoint", clients.sagemaker.delete_endpoint, EndpointName=spec.endpoint_name)
        _wait_gone(clients, spec.endpoint_name, **wait)
        _ensure_model(clients, spec, on_event)
        _ensure_endpoint_config(clients, spec, on_event)
        on_event(note(f"creating endpoint {spec.endpoint_name} (config {spec.config_name})"))
        call_aws("CreateEndpoint", clients.sagemaker.create_endpoint,
                 EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
    else:
        changes = differences(spec, deployed)
        if not changes:
            outcome = "unchanged"
            on_event(note(f"endpoint {spec.endpoint_name} is InService and matches the config; nothing to change"))
        else:
            outcome = "updated"
            on_event(note(f"endpoint {spec.endpoint_name} differs: {'; '.join(changes)}"))
            _ensure_model(clients, spec, on_event)
            _ensure_endpoint_config(clients, spec, on_event)
            # SageMaker refuses to change the instance type of a variant registered with Application Auto Scaling.
            had_target = deregister_scaling(clients, spec, on_event)
            on_event(note(f"updating endpoint {spec.endpoint_name} to config {spec.config_name}"))
            call_aws("UpdateEndpoint", clients.sagemaker.update_endpoint,
                     EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
            if had_target and spec.autoscaling is None:
                on_event(note("autoscaling was deregistered for the update and is not in the config; left off"))

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
        ensure_scaling(clients, spec, spec.autoscaling, on_event)

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
        writes=tuple(c for c in clients.calls[first_write:] if not c.startswith(READ_PREFIXES)),
        warnings=spec.warnings,
        model_data_url=spec.model_data_url,
    )


def _wait_settled(clients: AwsClients, name: str, **wait: Any) -> None:
    # Failed is handled by the caller, which re-reads; a timeout is re-raised below.
    with contextlib.suppress(AwsError):
        wait_for_endpoint(clients, name, **wait)
    described = call_aws("DescribeEndpoint", clients.sagemaker.describe_endpoint, EndpointName=name)
    if described.get("EndpointStatus") not in SETTLED:
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
        described = call_aws("DescribeEndpoint", clients.sagemaker.describe_endpoint, missing_ok=True,
                             EndpointName=name)
        if described is None:
            return
        on_event(note(f"endpoint {name}: {described.get('EndpointStatus')} ({_duration(clock() - start)})"))
        if clock() - start >= timeout:
            raise AwsError(f"endpoint {name} is still {described.get('EndpointStatus')} after "
                           f"{_duration(clock() - start)}")
        sleep(poll)


def _ensure_model(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> None:
    sm = clients.sagemaker
    if call_aws("DescribeModel", sm.describe_model, missing_ok=True, ModelName=spec.model_name) is not None:
        on_event(note(f"model {spec.model_name} exists"))
        return
    what = spec.model_data_url or spec.environment.get("HF_MODEL_ID")
    if spec.model_data_url and "HF_MODEL_ID" in spec.environment:
        what = f"{spec.environment['HF_MODEL_ID']} with {spec.model_data_url}"
    on_event(note(f"creating model {spec.model_name} ({what} on {spec.image_uri})"))
    call_aws("CreateModel", sm.create_model, role_arn=spec.role_arn, **create_model_params(spec))


def _ensure_endpoint_config(clients: AwsClients, spec: EndpointSpec, on_event: OnEvent) -> None:
    sm = clients.sagemaker
    existing = call_aws("DescribeEndpointConfig", sm.describe_endpoint_config, missing_ok=True,
                        EndpointConfigName=spec.config_name)
    if existing is not None:
        on_event(note(f"endpoint config {spec.config_name} exists"))
        return
    on_event(note(f"creating endpoint config {spec.config_name} ({spec.instance_count} x {spec.instance_type})"))
    call_aws("CreateEndpointConfig", sm.create_endpoint_config, **create_endpoint_config_params(spec))


def _delete_replaced(config: Config, clients: AwsClients, spec: EndpointSpec, before: Deployed,
                     on_event: OnEvent) -> None:
    """Delete the endpoint config, model and archive the update replaced, when os-rerank made them."""
    sm = clients.sagemaker
    old_config = (before.endpoint_config or {}).get("EndpointConfigName")
    if old_config and old_config != spec.config_name and is_owned(old_config, spec.endpoint_name):
        on_event(note(f"deleting replaced endpoint config {old_config}"))
        call_aws("DeleteEndpointConfig", sm.delete_endpoint_config, missing_ok=True, EndpointConfigName=old_config)
    for model, described in before.models.items():
        if model != spec.model_name and is_owned(model, spec.endpoint_name):
            on_event(note(f"deleting replaced model {model}"))
            call_aws("DeleteModel", sm.delete_model, missing_ok=True, ModelName=model)
            old_data = replaced_artifact(config, spec, described)
            if old_data is not None and clients.s3 is not None:
                delete_artifact(clients, old_data, on_event)
