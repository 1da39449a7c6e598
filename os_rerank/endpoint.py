"""Invoke the SageMaker endpoint directly, through boto3 `sagemaker-runtime`, speaking the configured contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .config import Config
from .contracts import ContractError, get_contract
from .credentials import aws_session
from .errors import AWS_CREDENTIALS_FIX, EndpointError


def endpoint_client(config: Config, session: Any = None) -> Any:
    """A sagemaker-runtime client for config.sagemaker (the local endpoint when local_endpoint_url is set)."""
    from botocore.config import Config as BotoConfig

    session = session or aws_session(config)
    sm = config.sagemaker
    kwargs: dict[str, Any] = {
        "region_name": sm.region,
        # boto3's standard mode retries throttling and 5xx a few times, as any careful client would.
        "config": BotoConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=60),
    }
    if sm.local_endpoint_url:
        kwargs["endpoint_url"] = sm.local_endpoint_url
    return session.client("sagemaker-runtime", **kwargs)


def score_documents(config: Config, query: str, docs: Sequence[str], *, client: Any = None) -> list[float]:
    """The endpoint's scores for (query, doc) pairs, in input order. EndpointError with a fix otherwise."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    contract = get_contract(config.sagemaker.contract)
    name = config.sagemaker.name
    where = config.sagemaker.local_endpoint_url or f"SageMaker runtime in {config.sagemaker.region}"
    body = json.dumps(contract.build_request(query, list(docs)), ensure_ascii=False).encode("utf-8")
    try:
        client = client or endpoint_client(config)
        response = client.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                          Accept="application/json", Body=body)
        raw = response["Body"].read()
    except (NoCredentialsError, PartialCredentialsError):
        raise EndpointError(
            f"no AWS credentials to call endpoint {name!r}",
            fix=AWS_CREDENTIALS_FIX,
        ) from None
    except EndpointConnectionError as exc:
        raise EndpointError(
            f"cannot reach endpoint {name!r} at {where}: {exc}",
            fix="check sagemaker.local_endpoint_url (is `os-rerank serve` running?) or sagemaker.region",
        ) from None
    except ClientError as exc:
        raise endpoint_error(exc, name) from None
    except BotoCoreError as exc:
        raise EndpointError(f"endpoint {name!r}: {exc}", fix="check the endpoint and network") from None
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EndpointError(f"endpoint {name!r} answered with something that is not JSON ({exc}): {raw[:200]!r}",
                            fix="check that the endpoint speaks the configured contract") from None
    try:
        return contract.parse_response(decoded, len(docs))
    except ContractError as exc:
        raise EndpointError(
            f"endpoint {name!r} does not answer in the {contract.name} contract: {exc}",
            fix=f"set sagemaker.contract to the contract the endpoint speaks (now {contract.name})",
        ) from None


def endpoint_error(exc: Any, name: str) -> EndpointError:
    """The EndpointError (with its fix) for a botocore ClientError from invoke_endpoint."""
    error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message", exc))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") if hasattr(exc, "response") else None
    text = f"endpoint {name!r}: {code or 'error'}: {message}"
    if code.startswith("Throttling") or status == 429:
        fix = ("the endpoint is throttling: retry later, add instances or autoscaling, and lower the connector's "
               "client_config.max_connection")
    elif code == "ModelError":
        fix = ("the model container failed on this input: read its CloudWatch log (/aws/sagemaker/Endpoints/"
               f"{name}); check sagemaker.contract matches what the container expects")
    elif code == "ValidationError" and "not found" in message.lower():
        fix = "check sagemaker.endpoint_name and sagemaker.region; the endpoint must exist and be InService"
    elif code == "ValidationError":
        fix = "the request was refused as invalid: check sagemaker.contract and the endpoint's input format"
    elif code in ("UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
                  "ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException"):
        fix = "check the AWS credentials (and sagemaker:InvokeEndpoint permission) of the boto3 chain"
    elif status is not None and int(status) >= 500:
        fix = "the endpoint failed (5xx): check its health and logs, then retry"
    else:
        fix = "check the endpoint's logs and sagemaker.contract"
    return EndpointError(text, fix=fix)
