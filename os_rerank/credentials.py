"""The AWS credentials the connector signs its SageMaker calls with, from the boto3 chain.

Never printed: callers add `ConnectorCredential.secrets()` to the redaction set before anything is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config
from .errors import AWS_CREDENTIALS_FIX, AwsError


@dataclass(frozen=True)
class ConnectorCredential:
    """The connector's `credential` object, and what is known about how long it lasts."""

    values: dict[str, str]
    temporary: bool = False
    expires: datetime | None = None

    def secrets(self) -> list[str]:
        """The secret values in `values` (a role ARN is not a secret)."""
        return [v for k, v in self.values.items() if k != "roleArn" and v]


_SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def known_secrets(environ: Mapping[str, str], profile: str | None) -> set[str]:
    """The AWS secrets this machine holds without asking the network: the environment's and the profile's in the
    shared credentials file. Every command redacts them, read-only ones too, since a cluster's error message can
    quote a connector's keys."""
    import configparser

    found = {environ[k] for k in _SECRET_VARIABLES if environ.get(k)}
    path = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials").expanduser()
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return found
    section = profile or environ.get("AWS_PROFILE") or "default"
    if parser.has_section(section):
        for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            value = parser.get(section, key, fallback="").strip()
            if value:
                found.add(value)
    return found


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
            fix=AWS_CREDENTIALS_FIX,
        )
    frozen = credentials.get_frozen_credentials()
    values = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        values["session_token"] = frozen.token
    expiry = getattr(credentials, "_expiry_time", None)  # set by refreshable (STS / SSO / instance) credentials
    return ConnectorCredential(values, temporary=bool(frozen.token), expires=expiry)


def credential_warnings(
    cred: ConnectorCredential, *, now: datetime | None = None, aws_managed: bool | None = None
) -> list[str]:
    """Warnings to print at setup about the connector's credential: temporary keys, their expiry, role ARN mode.

    `aws_managed` says whether the cluster is an Amazon OpenSearch Service domain (opensearch.auth.type aws_sigv4);
    None when unknown. Empty for long-lived keys.
    """
    if "roleArn" in cred.values:
        if aws_managed:
            return []
        if aws_managed is False:
            return [
                "connector.role_arn: the connector holds an IAM role ARN, which only Amazon OpenSearch Service "
                "understands; self-managed OpenSearch refuses it with `Missing credential` (use the boto3 chain's "
                "keys instead: remove connector.role_arn)"
            ]
        return [
            "connector.role_arn: role ARN mode works on Amazon OpenSearch Service domains only; self-managed "
            "OpenSearch refuses it with `Missing credential`"
        ]
    if not cred.temporary:
        return []
    when = _expiry_text(cred.expires, now)
    return [
        "the connector's AWS credentials are temporary (they carry a session token): the connector stops reaching "
        f"SageMaker when they expire{when}; run `os-rerank rotate-credentials` before then, or give it long-lived "
        "IAM user keys (or connector.role_arn on Amazon OpenSearch Service)"
    ]


def _expiry_text(expires: datetime | None, now: datetime | None) -> str:
    if expires is None:
        return " (their expiry is not known)"
    from datetime import timezone

    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    left = (expires - now).total_seconds()
    stamp = expires.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return f", and they already expired at {stamp}"
    hours, minutes = int(left // 3600), int(left % 3600 // 60)
    return f", at {stamp} (in {hours}h{minutes:02d}m)"


def is_aws_managed(config: Config) -> bool | None:
    """Whether config.opensearch is an Amazon OpenSearch Service domain: by SigV4 auth or host; None if unsure."""
    from urllib.parse import urlsplit

    host = (urlsplit(config.opensearch.url).hostname or "").lower()
    if config.opensearch.auth.type == "aws_sigv4" or host.endswith((".es.amazonaws.com", ".aoss.amazonaws.com")):
        return True
    if host in ("localhost", "127.0.0.1", "::1", "opensearch") or "." not in host:
        return False
    return None


def chain_secrets(config: Config) -> list[str]:
    """The secret values the boto3 chain holds now (for `Env.secrets`); empty when it has none."""
    try:
        credentials = aws_session(config).get_credentials()
    except AwsError:
        return []
    if credentials is None:
        return []
    frozen = credentials.get_frozen_credentials()
    return [v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]
