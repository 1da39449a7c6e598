"""`os-rerank rotate-credentials` against the ML Commons test double (tests/fakes/) and the local endpoint.

The endpoint accepts only the *new* keys (the old ones stand for expired credentials), and the double keeps the
connector a model loaded at deploy time, as ML Commons does: so a predict succeeds after rotation only when the
connector was really updated and the model really redeployed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from os_rerank.cli import main
from os_rerank.contracts import REQUEST_BODY, get_contract
from os_rerank.server.app import DEFAULT_ENDPOINT_NAME, EndpointServer
from os_rerank.server.lexical import LexicalScorer
from tests.fakes import OpenSearchDouble

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
ML = "/_plugins/_ml"
CONNECTOR_NAME = "os-rerank sagemaker cross-encoder"
OLD_KEY, OLD_SECRET = "AKIDEXAMPLE-old-key", "old-secret-old-secret-old-secret-000000"
NEW_KEY = "ASIAIOSFODNN7EXAMPLE"
NEW_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NEW_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"
SECRETS = (OLD_SECRET, NEW_KEY, NEW_SECRET, NEW_TOKEN, OLD_KEY)


@pytest.fixture
def endpoint() -> Iterator[EndpointServer]:
    with EndpointServer(get_contract("hf-text-classification"), LexicalScorer(),
                        credentials={NEW_KEY: NEW_SECRET}) as server:
        yield server


@pytest.fixture
def double(opensearch_double: OpenSearchDouble) -> OpenSearchDouble:
    if opensearch_double.glue is None:
        pytest.skip("predict through the double needs the Painless glue JVM (no JDK here)")
    return opensearch_double


@pytest.fixture
def new_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The boto3 chain holds fresh temporary keys (environment only: no profile files, no instance metadata)."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", NEW_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", NEW_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", NEW_TOKEN)


def call(double: OpenSearchDouble, method: str, path: str, body: Any = None) -> Any:
    client = OpenSearch(hosts=[double.url], max_retries=0, timeout=30)
    return client.transport.perform_request(method, path, body=body)


def provision(double: OpenSearchDouble, endpoint: EndpointServer, *, deploy: bool = True) -> tuple[str, str]:
    """A connector holding the old keys and a model on it, as `setup` left them before the keys expired."""
    call(double, "PUT", "/_cluster/settings", {"persistent": {
        "plugins.ml_commons.trusted_connector_endpoints_regex": [r"^http://127\.0\.0\.1:\d+/.*$"],
        "plugins.ml_commons.connector.private_ip_enabled": True}})
    contract = get_contract("hf-text-classification")
    connector = {
        "name": CONNECTOR_NAME, "description": "rotate test", "version": "1", "protocol": "aws_sigv4",
        "parameters": {"region": "us-west-2", "service_name": "sagemaker"},
        "credential": {"access_key": OLD_KEY, "secret_key": OLD_SECRET},
        "actions": [{
            "action_type": "predict", "method": "POST",
            "url": f"{endpoint.url}/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations",
            "headers": {"content-type": "application/json"}, "request_body": REQUEST_BODY,
            "pre_process_function": (ROOT / "painless" / contract.pre_process_file).read_text(),
            "post_process_function": (ROOT / "painless" / contract.post_process_file).read_text(),
        }],
    }
    connector_id = call(double, "POST", f"{ML}/connectors/_create", connector)["connector_id"]
    model_id = call(double, "POST", f"{ML}/models/_register",
                    {"name": "os-rerank cross-encoder", "function_name": "remote",
                     "connector_id": connector_id})["model_id"]
    if deploy:
        call(double, "POST", f"{ML}/models/{model_id}/_deploy")
    double.settle_searches()  # provisioned a while ago, as rotation finds it
    return connector_id, model_id


def write_config(tmp_path: Path, double: OpenSearchDouble) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"opensearch:\n  url: {double.url}\nsagemaker:\n  region: us-west-2\n"
                    f"  endpoint_name: {DEFAULT_ENDPOINT_NAME}\n", encoding="utf-8")
    return path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def predict_status(double: OpenSearchDouble, model_id: str) -> int:
    from opensearchpy.exceptions import TransportError

    try:
        call(double, "POST", f"{ML}/_predict/text_similarity/{model_id}",
             {"query_text": "capital", "text_docs": ["Washington is the capital"]})
    except TransportError as exc:
        return int(exc.status_code)
    return 200


def test_rotate_undeploys_updates_deploys_and_verifies(
    double: OpenSearchDouble, endpoint: EndpointServer, new_keys: None, tmp_path: Path
) -> None:
    connector_id, model_id = provision(double, endpoint)
    assert predict_status(double, model_id) != 200  # the old keys no longer reach the endpoint
    double.clear_requests()

    code, out, err = run("rotate-credentials", "--config", str(write_config(tmp_path, double)), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result == {
        "connector_id": connector_id,
        "model_ids": [model_id],
        "credential": "temporary keys",
        "verified": True,
        "steps": [
            f"connector {connector_id}: 1 model(s) use it",
            f"undeployed model {model_id}",
            f"updated the credential of connector {connector_id} (temporary keys)",
            f"deployed model {model_id}",
            f"verified: a predict through model {model_id} reached the endpoint",
        ],
    }
    assert "os-rerank: warning: the connector's AWS credentials are temporary" in err
    assert [(r.method, r.path) for r in double.writes()] == [
        ("POST", f"{ML}/models/{model_id}/_undeploy"),
        ("PUT", f"{ML}/connectors/{connector_id}"),
        ("POST", f"{ML}/models/{model_id}/_deploy"),
    ]
    put = next(r for r in double.writes() if r.method == "PUT")
    assert set(json.loads(put.body)) == {"credential"}
    assert double.state.connectors[connector_id]["credential"] == {
        "access_key": NEW_KEY, "secret_key": NEW_SECRET, "session_token": NEW_TOKEN}
    last = double.remote_calls[-1]
    assert last["status"] == 200
    assert f"Credential={NEW_KEY}/" in last["headers"]["Authorization"]
    assert_no_secrets(out, err)


def test_rotate_text_output_and_a_model_that_was_not_deployed(
    double: OpenSearchDouble, endpoint: EndpointServer, new_keys: None, tmp_path: Path
) -> None:
    connector_id, model_id = provision(double, endpoint, deploy=False)
    code, out, err = run("rotate-credentials", "--config", str(write_config(tmp_path, double)))
    assert code == 0, err
    assert out == (f"connector {connector_id}: credential updated (temporary keys); models {model_id}; "
                   "verified: yes\n")
    assert f"undeployed model {model_id}" not in err  # nothing to undeploy
    assert f"deployed model {model_id}" in err
    assert_no_secrets(out, err)


def test_failed_update_redeploys_with_the_old_credential(
    double: OpenSearchDouble, endpoint: EndpointServer, new_keys: None, tmp_path: Path
) -> None:
    connector_id, model_id = provision(double, endpoint)
    double.inject("PUT", f"{ML}/connectors/{connector_id}$", status=400,
                  body={"error": {"root_cause": [{"type": "illegal_argument_exception", "reason": "nope"}],
                                  "type": "illegal_argument_exception", "reason": "nope"}, "status": 400})
    code, out, err = run("rotate-credentials", "--config", str(write_config(tmp_path, double)))
    assert code == 4
    assert f"os-rerank: error: PUT {ML}/connectors/{connector_id}: 400 nope" in err
    assert double.state.models[model_id]["model_state"] == "DEPLOYED"  # put back as it was
    assert double.state.connectors[connector_id]["credential"]["access_key"] == OLD_KEY
    assert_no_secrets(out, err)


def test_no_connector_says_run_setup(double: OpenSearchDouble, new_keys: None, tmp_path: Path) -> None:
    code, _, err = run("rotate-credentials", "--config", str(write_config(tmp_path, double)))
    assert code == 4  # the cluster holds no such connector
    assert f"os-rerank: error: no connector named '{CONNECTOR_NAME}' on the cluster" in err
    assert "os-rerank setup" in err
