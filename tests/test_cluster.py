"""Cluster access through the real opensearch-py stack: TLS, refused connections, 401/403, basic auth, retries.

Each case runs `os-rerank status` (a read-only command) in-process against a small local HTTP(S) server.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from os_rerank import cluster as cluster_module
from os_rerank.cli import main
from os_rerank.config import load_config
from os_rerank.errors import ClusterError

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

PASSWORD = "cluster-test-password-Zq81"
# The security plugin's 403 reason, as a 2.19.1 node words it (tests/data/opensearch/security_403.json).
DENIED = "no permissions for [cluster:monitor/main] and User [name=alice, backend_roles=[], requestedTenant=null]"


class _Handler(BaseHTTPRequestHandler):
    """Answers GET / like OpenSearch, or with the status the test queued."""

    statuses: list[int] = []
    seen_auth: list[str | None] = []
    warning: str | None = None  # a Warning header to send, as a real node does now and then

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen_auth.append(self.headers.get("Authorization"))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            body = {"version": {"number": "2.19.0", "distribution": "opensearch"}}
        else:
            reason = "Unauthorized" if status == 401 else DENIED
            body = {"error": {"root_cause": [{"type": "security_exception", "reason": reason}],
                              "type": "security_exception", "reason": reason}, "status": status}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if self.warning:
            self.send_header("Warning", self.warning)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"statuses": [], "seen_auth": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Handler]]]:
    yield from _serve()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found (needed to make a self-signed certificate)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[tuple[str, type[_Handler]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(context)


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"opensearch:\n  url: {url}\n{extra}sagemaker:\n  region: us-west-2\n  endpoint_name: e\n", encoding="utf-8"
    )
    return path


def run(config: Path, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["status", "--config", str(config)], environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module, "RETRY_BASE_SECONDS", 0.0)


def test_refused_connection_is_one_clear_error(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as probe:
        port = probe.server_address[1]  # bound, then closed: nothing listens there
    code, out, err = run(write_config(tmp_path, f"http://127.0.0.1:{port}"))
    assert (code, out) == (4, "")
    assert err == (
        f"os-rerank: error: GET /: no answer from http://127.0.0.1:{port} (Connection refused)\n"
        "os-rerank: error: fix: check opensearch.url (or OPENSEARCH_URL) and that the cluster is up\n"
    )


def test_untrusted_certificate_names_the_fix(tmp_path: Path, https_server: tuple[str, type[_Handler]]) -> None:
    url, _ = https_server
    code, out, err = run(write_config(tmp_path, url))
    assert (code, out) == (4, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"os-rerank: error: GET /: the TLS certificate of {url} is not trusted (")
    assert lines[1] == (
        "os-rerank: error: fix: set opensearch.ca_certs to the cluster's CA bundle (or verify_certs: false, "
        "for tests only)"
    )
    assert "Traceback" not in err


@pytest.mark.parametrize("tls", ["ca_certs", "verify_certs: false"])
def test_tls_settings_win_over_the_environment_bundle(
    tmp_path: Path, https_server: tuple[str, type[_Handler]], certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch, tls: str,
) -> None:
    # requests lets these replace a session's CA bundle; the configured one must still be used.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    monkeypatch.setenv("CURL_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    url, _ = https_server
    extra = f"  ca_certs: {certificate[0]}\n" if tls == "ca_certs" else "  verify_certs: false\n"
    config = load_config(write_config(tmp_path, url, extra), {})
    assert cluster_module.connect(config).request("GET", "/")["version"]["number"] == "2.19.0"
    code, _, err = run(write_config(tmp_path, url, extra))  # every command run warns when nothing is verified
    warned = "os-rerank: warning: opensearch.verify_certs is false: the cluster's certificate is not checked"
    assert (warned in err) == (tls != "ca_certs")


def test_401_names_the_credentials_and_403_the_missing_permission(
    tmp_path: Path, http_server: tuple[str, type[_Handler]]
) -> None:
    url, handler = http_server
    config = write_config(tmp_path, url, "  auth: {type: basic, username: alice}\n")
    handler.statuses.extend([401])
    code, out, err = run(config, {"OPENSEARCH_PASSWORD": PASSWORD})
    assert (code, out) == (4, "")
    assert err.splitlines() == [
        "os-rerank: error: GET /: 401 Unauthorized (security_exception)",
        "os-rerank: error: fix: check the credentials: OPENSEARCH_USERNAME / OPENSEARCH_PASSWORD for basic auth, "
        "the AWS credential chain for aws_sigv4",
    ]
    handler.statuses.extend([403])
    code, out, err = run(config, {"OPENSEARCH_PASSWORD": PASSWORD})
    assert (code, out) == (4, "")
    assert err.splitlines() == [
        f"os-rerank: error: GET /: 403 {DENIED} (security_exception)",
        "os-rerank: error: fix: user alice lacks cluster:monitor/main, needed to read the OpenSearch version: an "
        "admin grants it with the role `os-rerank render --what role --config FILE` prints (PUT "
        "_plugins/_security/api/roles/os_rerank_operator, then map the user to it)",
    ]
    assert "credentials" not in err and PASSWORD not in err
    # Basic auth really was sent, with the password from the environment.
    assert handler.seen_auth[0] == "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


def test_basic_auth_without_a_password_is_a_config_error(tmp_path: Path) -> None:
    code, out, err = run(write_config(tmp_path, "http://127.0.0.1:9", "  auth: {type: basic}\n"))
    assert (code, out) == (2, "")
    assert err == (
        "os-rerank: error: config.yaml: opensearch.auth: type basic needs a password\n"
        "os-rerank: error: fix: set OPENSEARCH_PASSWORD in the environment\n"
    )


def test_reads_are_retried_on_503(tmp_path: Path, http_server: tuple[str, type[_Handler]]) -> None:
    url, handler = http_server
    handler.statuses.extend([503, 503])
    cluster = cluster_module.connect(load_config(write_config(tmp_path, url), {}))
    assert cluster.request("GET", "/")["version"]["number"] == "2.19.0"
    assert [c.status for c in cluster.calls] == [503, 503, 200]


def test_a_write_is_not_retried_after_an_unknown_outcome(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as probe:
        port = probe.server_address[1]
    cluster = cluster_module.connect(load_config(write_config(tmp_path, f"http://127.0.0.1:{port}"), {}))
    with pytest.raises(ClusterError):
        cluster.request("POST", "/_plugins/_ml/connectors/_create", body={"name": "x"})
    assert len(cluster.calls) == 1  # a blind retry could create a second connector


def test_a_warning_header_is_neither_an_error_nor_a_stray_line(http_server: tuple[str, type[_Handler]],
                                                                 caplog: pytest.LogCaptureFixture,
                                                                 tmp_path: Path) -> None:
    """2.19.1 answers some of ML Commons' searches with a system-index Warning; opensearch-py would make it a Python
    warning (an error under this suite's -W error, a stray stderr line for users). It goes to the debug log."""
    url, handler = http_server
    handler.warning = ('299 OpenSearch-2.19.1-abc "this request accesses system indices: [.plugins-ml-connector], '
                       'but in a future major version, direct access to system indices will be prevented by default"')
    cluster = cluster_module.connect(load_config(write_config(tmp_path, url), env={}))
    with caplog.at_level("DEBUG", logger="os_rerank.cluster"):
        assert cluster.request("GET", "/")["version"]["number"] == "2.19.0"
    assert any("accesses system indices" in r.getMessage() for r in caplog.records)
