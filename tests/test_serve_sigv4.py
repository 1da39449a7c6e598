"""SigV4 on the runtime route: the real boto3 client is accepted, every kind of forgery is refused with 403."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from os_rerank.contracts import get_contract
from os_rerank.server.app import DEFAULT_ENDPOINT_NAME, EndpointServer
from os_rerank.server.lexical import LexicalScorer

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

AKID, SECRET = "AKIDSIGV4TEST0000001", "the-real-secret"
BODY = json.dumps({"pairs": [["capital of korea", "서울은 대한민국의 수도이다"]]}, ensure_ascii=False).encode()
PATH = f"/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations"
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")


@pytest.fixture(scope="module")
def server() -> Iterator[EndpointServer]:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer(), credentials={AKID: SECRET}) as s:
        yield s


def call(server: EndpointServer, key: str = AKID, secret: str = SECRET, token: str | None = None) -> dict:
    c = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2", aws_access_key_id=key,
                     aws_secret_access_key=secret, aws_session_token=token,
                     config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}))
    out = c.invoke_endpoint(EndpointName=DEFAULT_ENDPOINT_NAME, Body=BODY, ContentType="application/json")
    return json.loads(out["Body"].read())


def refused(server: EndpointServer, **kw: object) -> tuple[int, dict]:
    with pytest.raises(ClientError) as info:
        call(server, **kw)  # type: ignore[arg-type]
    return info.value.response["ResponseMetadata"]["HTTPStatusCode"], info.value.response["Error"]


def signed(body: bytes, *, service: str = "sagemaker", secret: str = SECRET, token: str | None = None,
           extra: dict[str, str] | None = None, port: int = 0) -> dict[str, str]:
    """Headers of a request signed by botocore's SigV4Auth, the way boto3 signs (for hand-made forgeries)."""
    request = AWSRequest("POST", f"http://127.0.0.1:{port}{PATH}", data=body,
                         headers={"Content-Type": "application/json", **(extra or {})})
    SigV4Auth(Credentials(AKID, secret, token), service, "us-west-2").add_auth(request)
    return dict(request.headers.items())


def raw_post(server: EndpointServer, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", PATH, body=body, headers=headers)
    response = conn.getresponse()
    out = response.status, response.getheader("x-amzn-ErrorType"), json.loads(response.read())
    conn.close()
    return out


def test_right_key_is_accepted(server: EndpointServer) -> None:
    assert len(call(server)["scores"]) == 1


def test_session_token_is_accepted_and_signed(server: EndpointServer) -> None:
    assert len(call(server, token="FwoGZXIvYXdzEXAMPLETOKEN//+=")["scores"]) == 1
    headers = server.received[-1].headers
    assert headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLETOKEN//+="
    assert "x-amz-security-token" in headers["authorization"]


def test_wrong_secret_is_refused(server: EndpointServer) -> None:
    assert refused(server, secret="not-the-secret") == (403, {"Code": "InvalidSignatureException",
                                                              "Message": MISMATCH})


def test_unknown_key_id_is_refused(server: EndpointServer) -> None:
    invalid = "The security token included in the request is invalid."
    assert refused(server, key="AKIDSOMEONEELSE00001") == (
        403, {"Code": "UnrecognizedClientException", "Message": invalid})


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_or_future_date_is_refused(server: EndpointServer, monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    then = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: then)
    status, error = refused(server)
    assert (status, error["Code"]) == (403, "InvalidSignatureException")
    assert error["Message"].startswith("Signature expired:" if minutes < 0 else "Signature not yet current:")


def test_four_minutes_of_skew_is_tolerated(server: EndpointServer, monkeypatch: pytest.MonkeyPatch) -> None:
    then = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: then)
    assert len(call(server)["scores"]) == 1


def test_tampered_body_is_refused(server: EndpointServer) -> None:
    headers = signed(BODY, port=server.port)
    assert raw_post(server, BODY, headers)[0] == 200  # the forgery harness itself signs correctly
    tampered = BODY.replace(b"korea", b"japan")
    assert raw_post(server, tampered, headers) == (403, "InvalidSignatureException", {"message": MISMATCH})


def test_content_sha256_header_must_match_the_body(server: EndpointServer) -> None:
    # botocore signs the header's value instead of hashing the body, so a lying header must not pass.
    other = b'{"pairs": [["x", "y"]]}'
    headers = signed(other, port=server.port, extra={"X-Amz-Content-SHA256": botocore.auth.sha256(other).hexdigest()})
    status, kind, body = raw_post(server, BODY, headers)
    assert (status, kind) == (403, "InvalidSignatureException")
    assert "X-Amz-Content-SHA256" in body["message"]


def test_signature_for_another_service_is_refused(server: EndpointServer) -> None:
    headers = signed(BODY, service="execute-api", port=server.port)
    assert raw_post(server, BODY, headers) == (
        403, "InvalidSignatureException", {"message": "Credential should be scoped to correct service: 'sagemaker'."})


def test_unsigned_request_is_refused(server: EndpointServer) -> None:
    assert raw_post(server, BODY, {"Content-Type": "application/json"}) == (
        403, "MissingAuthenticationTokenException", {"message": "Missing Authentication Token"})


def test_garbled_authorization_is_refused(server: EndpointServer) -> None:
    status, kind, _ = raw_post(server, BODY, {"Authorization": "AWS4-HMAC-SHA256 nonsense"})
    assert (status, kind) == (403, "IncompleteSignatureException")


def test_without_credentials_signatures_are_not_checked() -> None:
    with EndpointServer(get_contract("pairs-scores"), LexicalScorer()) as open_server:
        assert len(call(open_server, key="ANYKEY", secret="anything")["scores"]) == 1
