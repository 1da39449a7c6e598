"""One AWS call, and the AwsError (with its fix) for the ways it fails; shared by every module that calls AWS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import AWS_CREDENTIALS_FIX, AwsError


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


def call(op: str, fn: Callable[..., Any], *, missing_ok: bool = False, role_arn: str | None = None,
          **kwargs: Any) -> Any:
    """fn(**kwargs); None when the resource is missing and `missing_ok`; AwsError otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if missing_ok and is_missing(exc):
            return None
        raise aws_error(op, exc, role_arn=role_arn) from None
