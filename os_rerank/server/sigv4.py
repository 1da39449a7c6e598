"""AWS Signature Version 4 verification, by recomputing the signature with botocore for a known key.

The request is rebuilt from the raw body and only the headers the client says it signed, then botocore's own
`SigV4Auth` computes what the signature must be for the configured secret. Failures raise `SigV4Error` carrying the
status, the AWS error type (sent as `x-amzn-ErrorType`) and the message AWS itself uses for that case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=5)
SERVICE = "sagemaker"

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


class SigV4Error(Exception):
    """A request failed signature verification; `status`, `error_type` and the message go back to the client."""

    def __init__(self, message: str, *, error_type: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status = status


@dataclass(frozen=True)
class Scope:
    """What the Authorization header claims, once every check that needs no body has passed."""

    key_id: str
    secret: str = field(repr=False)
    region: str = ""
    amz_date: str = ""
    signed_headers: tuple[str, ...] = ()
    signature: str = ""


def check_scope(
    headers: Mapping[str, str],
    credentials: Mapping[str, str],
    *,
    region: str | None = None,
    now: dt.datetime | None = None,
) -> Scope:
    """Every check that needs only the headers: algorithm, key, scope (date, region, service), clock skew.

    The server runs this before it reads a body, so an unsigned or mis-scoped request costs no more than its headers.
    `region` None accepts any region (the signature still covers it).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        raise SigV4Error("Missing Authentication Token", error_type="MissingAuthenticationTokenException")
    match = _AUTH.match(auth.strip())
    if not match:
        raise SigV4Error(
            f"Authorization header requires the {ALGORITHM} algorithm with Credential, SignedHeaders and Signature.",
            error_type="IncompleteSignatureException",
        )
    scope = match["cred"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SigV4Error(f"Credential should be scoped correctly: {match['cred']!r}.",
                         error_type="IncompleteSignatureException")
    key_id, date, scope_region, service, _ = scope
    secret = credentials.get(key_id)
    if secret is None:
        raise SigV4Error("The security token included in the request is invalid.",
                         error_type="UnrecognizedClientException")
    if service != SERVICE:
        raise SigV4Error(f"Credential should be scoped to correct service: '{SERVICE}'.",
                         error_type="InvalidSignatureException")
    if region is not None and scope_region != region:
        raise SigV4Error(f"Credential should be scoped to a valid region: {scope_region!r} is not this endpoint's "
                         f"region {region!r} (serve --region).", error_type="InvalidSignatureException")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise SigV4Error("Request is missing or has a malformed X-Amz-Date header (expected YYYYMMDDTHHMMSSZ).",
                         error_type="IncompleteSignatureException") from None
    current = now or dt.datetime.now(dt.timezone.utc)
    if abs(current - signed_at) > MAX_SKEW:
        lo, hi = (current - MAX_SKEW).strftime("%Y%m%dT%H%M%SZ"), (current + MAX_SKEW).strftime("%Y%m%dT%H%M%SZ")
        raise SigV4Error(f"Signature expired: {amz_date} is now earlier than {lo} ({current:%Y%m%dT%H%M%SZ} - 5 min.)"
                         if signed_at < current else
                         f"Signature not yet current: {amz_date} is still later than {hi} "
                         f"({current:%Y%m%dT%H%M%SZ} + 5 min.)",
                         error_type="InvalidSignatureException")
    if date != amz_date[:8]:
        raise SigV4Error(f"Credential should be scoped to a valid date: {date!r} does not match X-Amz-Date.",
                         error_type="InvalidSignatureException")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise SigV4Error("'Host' must be a signed header.", error_type="InvalidSignatureException")
    missing = [h for h in signed if h not in lower]
    if missing:
        raise SigV4Error(f"Signed header(s) missing from the request: {', '.join(missing)}.",
                         error_type="InvalidSignatureException")
    return Scope(key_id, secret, scope_region, amz_date, tuple(signed), match["sig"])


def verify_sigv4(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    *,
    region: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The access key id that validly signed this request; SigV4Error otherwise. `path` includes any query string."""
    scope = check_scope(headers, credentials, region=region, now=now)
    lower = {k.lower(): v for k, v in headers.items()}

    content_sha = lower.get("x-amz-content-sha256")
    if content_sha is not None and not hmac.compare_digest(content_sha, hashlib.sha256(body).hexdigest()):
        # botocore signs this header's value instead of hashing the body, so it must match the body we got.
        raise SigV4Error("The provided X-Amz-Content-SHA256 header does not match the body (unsigned or altered "
                         "payloads are refused).", error_type="InvalidSignatureException")

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"http://{lower['host']}{path}", data=body,
                         headers={h: lower[h] for h in scope.signed_headers})
    request.context["timestamp"] = scope.amz_date
    signer = SigV4Auth(Credentials(scope.key_id, scope.secret, lower.get("x-amz-security-token")), SERVICE,
                       scope.region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, scope.signature):
        raise SigV4Error(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.",
            error_type="InvalidSignatureException",
        )
    return scope.key_id
