"""The AWS credentials the connector signs its SageMaker calls with, from the boto3 chain.

Never printed: callers add `ConnectorCredential.secrets()` to the redaction set before anything is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import Config
from .errors import AwsError


@dataclass(frozen=True)
class ConnectorCredential:
    """The connector's `credential` object, and what is known about how long it lasts."""

    values: dict[str, str]
    temporary: bool = False
    expires: datetime | None = None

    def secrets(self) -> list[str]:
        """The secret values in `values` (a role ARN is not a secret)."""
        return [v for k, v in self.values.items() if k != "roleArn" and v]


def aws_session(config: Config) -> Any:
    """A boto3 Session for config.aws.profile (or the default chain)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=config.aws.profile) if config.aws.profile else boto3.Session()
    except ProfileNotFound:
        raise AwsError(
            f"AWS profile {config.aws.profile!r} not found",
            fix="set aws.profile or AWS_PROFILE to a configured profile",
        ) from None


def connector_credential(config: Config) -> ConnectorCredential:
    """The credential the connector stores: a role ARN (Amazon OpenSearch Service) or keys from the boto3 chain."""
    if config.connector.role_arn:
        return ConnectorCredential({"roleArn": config.connector.role_arn})
    credentials = aws_session(config).get_credentials()
    if credentials is None:
        raise AwsError(
            "no AWS credentials found for the connector to sign its SageMaker calls with",
            fix="configure the boto3 chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role",
        )
    frozen = credentials.get_frozen_credentials()
    values = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        values["session_token"] = frozen.token
    expiry = getattr(credentials, "_expiry_time", None)  # set by refreshable (STS / SSO / instance) credentials
    return ConnectorCredential(values, temporary=bool(frozen.token), expires=expiry)
