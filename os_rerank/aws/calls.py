"""AWS calls for the endpoint commands: the clients, one wrapper that maps boto3's errors, and the call record.

Every AWS operation sent is recorded in `AwsClients.calls`, so tests count writes the way the cluster wrapper
does. `call_aws` turns a botocore failure into one AwsError whose fix names what users meet (the execution role,
iam:PassRole, expired credentials), and a missing resource into None where the caller allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..errors import AWS_CREDENTIALS_FIX, AwsError

READ_PREFIXES = ("Describe", "List", "Get", "Head")


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
        return [c for c in self.calls if not c.startswith(READ_PREFIXES)]


def aws_clients(config: Config) -> AwsClients:
    """Clients for config.sagemaker.region from the boto3 chain (aws.profile)."""
    from ..credentials import aws_session

    session = aws_session(config)
    region = config.sagemaker.region
    return AwsClients(session.client("sagemaker", region_name=region),
                      session.client("application-autoscaling", region_name=region),
                      session.client("s3", region_name=region), session.client("sts", region_name=region))


def aws_error(op: str, exc: Exception, *, role_arn: str | None = None) -> AwsError:
    """An AwsError for a failed call, with the fix for the failures users meet (role, credentials)."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return AwsError(f"{op}: no AWS credentials found",
                        fix=AWS_CREDENTIALS_FIX)
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


def is_missing(exc: Exception) -> bool:
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


def call_aws(op: str, fn: Callable[..., Any], *, missing_ok: bool = False, role_arn: str | None = None,
             **kwargs: Any) -> Any:
    """fn(**kwargs); None when the resource is missing and `missing_ok`; AwsError otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if missing_ok and is_missing(exc):
            return None
        raise aws_error(op, exc, role_arn=role_arn) from None
