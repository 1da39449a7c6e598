"""The connector's credential from the boto3 chain, the warnings setup prints about it, and SigV4 on cluster calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from os_rerank.config import load_config
from os_rerank.credentials import ConnectorCredential, connector_credential, credential_warnings, is_aws_managed

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

# Recognisable fake keys (AWS's documentation examples): never real, easy to grep for in output.
ACCESS_KEY = "AKIDEXAMPLE-os-rerank-creds"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"
ROLE = "arn:aws:iam::123456789012:role/opensearch-sagemaker"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A boto3 chain that sees only the environment: no profile files, no instance metadata."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_CREDENTIAL_EXPIRATION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return monkeypatch


def config_file(tmp_path: Path, extra: str = "", url: str = "http://localhost:9200") -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(f"opensearch:\n  url: {url}\nsagemaker:\n  region: us-west-2\n  endpoint_name: ce\n{extra}",
                    encoding="utf-8")
    return load_config(path, env={})


# --- credential_warnings -------------------------------------------------------------------------------------------


def test_long_lived_keys_need_no_warning() -> None:
    cred = ConnectorCredential({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})
    assert credential_warnings(cred, now=NOW) == []


def test_temporary_keys_warn_with_their_expiry() -> None:
    cred = ConnectorCredential({"access_key": "ASIAIOSFODNN7EXAMPLE", "secret_key": SECRET_KEY,
                                "session_token": SESSION_TOKEN},
                               temporary=True, expires=NOW + timedelta(hours=3, minutes=12))
    (warning,) = credential_warnings(cred, now=NOW)
    assert "temporary (they carry a session token)" in warning
    assert "when they expire, at 2026-05-01 15:12 UTC (in 3h12m)" in warning
    assert "os-rerank rotate-credentials" in warning
    assert SESSION_TOKEN not in warning and SECRET_KEY not in warning


def test_temporary_keys_without_known_expiry() -> None:
    cred = ConnectorCredential({"access_key": "a", "secret_key": "b", "session_token": "c"}, temporary=True)
    (warning,) = credential_warnings(cred, now=NOW)
    assert "when they expire (their expiry is not known)" in warning


def test_expired_keys_say_so() -> None:
    cred = ConnectorCredential({"access_key": "a", "secret_key": "b", "session_token": "c"}, temporary=True,
                               expires=NOW - timedelta(minutes=5))
    (warning,) = credential_warnings(cred, now=NOW)
    assert "they already expired at 2026-05-01 11:55 UTC" in warning


def test_role_arn_mode() -> None:
    cred = ConnectorCredential({"roleArn": ROLE})
    assert cred.secrets() == []
    assert credential_warnings(cred, aws_managed=True) == []
    (unsure,) = credential_warnings(cred)
    assert "Amazon OpenSearch Service domains only" in unsure
    (wrong,) = credential_warnings(cred, aws_managed=False)
    assert "Missing credential" in wrong and "remove connector.role_arn" in wrong


def test_is_aws_managed(tmp_path: Path) -> None:
    assert is_aws_managed(config_file(tmp_path)) is False
    assert is_aws_managed(config_file(tmp_path, url="https://search-x-abc.us-west-2.es.amazonaws.com")) is True
    assert is_aws_managed(config_file(tmp_path, url="https://search.example.com")) is None
    sigv4 = "  auth:\n    type: aws_sigv4\n"
    path = tmp_path / "config.yaml"
    path.write_text(f"opensearch:\n  url: https://vpc-domain.internal\n{sigv4}sagemaker:\n  region: us-west-2\n"
                    "  endpoint_name: ce\n", encoding="utf-8")
    assert is_aws_managed(load_config(path, env={})) is True


# --- connector_credential from the boto3 chain -----------------------------------------------------------------


def test_keys_from_the_environment(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cred = connector_credential(config_file(tmp_path))
    assert cred.values == {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    assert not cred.temporary and cred.expires is None
    assert sorted(cred.secrets()) == sorted([ACCESS_KEY, SECRET_KEY])


def test_session_token_and_expiry_from_the_environment(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_env.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    aws_env.setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    cred = connector_credential(config_file(tmp_path))
    assert cred.values["session_token"] == SESSION_TOKEN
    assert cred.temporary
    assert cred.expires is not None and cred.expires.year == 2099
    assert SESSION_TOKEN in cred.secrets()
    assert "2099-01-01 00:00 UTC" in credential_warnings(cred)[0]


def test_role_arn_from_config_skips_the_chain(tmp_path: Path) -> None:
    cred = connector_credential(config_file(tmp_path, f"connector:\n  role_arn: {ROLE}\n"))
    assert cred.values == {"roleArn": ROLE}


# --- SigV4 on the cluster calls themselves -------------------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _Capture.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        body = json.dumps({"version": {"number": "2.19.0", "distribution": "opensearch"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def capture_server() -> Iterator[str]:
    _Capture.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_cluster_calls_are_sigv4_signed(aws_env: pytest.MonkeyPatch, tmp_path: Path, capture_server: str,
                                        service: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from os_rerank.cluster import connect

    aws_env.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"opensearch:\n  url: {capture_server}\n  auth:\n    type: aws_sigv4\n    region: eu-west-1\n"
        f"    service: {service}\nsagemaker:\n  region: us-west-2\n  endpoint_name: ce\n",
        encoding="utf-8",
    )
    connect(load_config(path, env={})).request("GET", "/")

    (seen,) = _Capture.seen
    headers = seen["headers"]
    assert headers["x-amz-security-token"] == SESSION_TOKEN
    auth = headers["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    assert scope.split("/")[2:] == ["eu-west-1", service, "aws4_request"]
    signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token"} <= set(signed)
    signature = auth.split("Signature=", 1)[1].strip()

    # Recompute the signature independently with botocore over exactly the headers the client signed.
    request = AWSRequest(method="GET", url=capture_server + seen["path"],
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), service, "eu-west-1")
    canonical = signer.canonical_request(request)
    assert signer.signature(signer.string_to_sign(request, canonical), request) == signature
