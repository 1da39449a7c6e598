"""Every ML Commons failure setup can meet (docs/ml-commons.md#failures) maps to one clear fix."""

from __future__ import annotations

import pytest

from os_rerank.cluster import Cluster
from os_rerank.config import Config
from os_rerank.provision.diagnose import diagnose, diagnoser

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

URL = "http://endpoint:8080/endpoints/os-rerank-cross-encoder/invocations"
REGEX = r"^http://endpoint:8080/endpoints/os\-rerank\-cross\-encoder/invocations$"

CASES = [
    # (status, exact reason text from ML Commons' sources, words the fix must contain)
    (400, f"Connector URL is not matching the trusted connector endpoint regex, URL is: {URL} "
          "(illegal_argument_exception)", ["plugins.ml_commons.trusted_connector_endpoints_regex", REGEX,
                                           "keep every existing entry"]),
    (400, "Connector URL is not matching the trusted connector endpoint regex (illegal_argument_exception)",
     ["plugins.ml_commons.trusted_connector_endpoints_regex", REGEX]),
    (400, "Trusted connector endpoints regex is not configured. Please set "
          "plugins.ml_commons.trusted_connector_endpoints_regex.", [REGEX]),
    (400, "Connector URL is not matching the trusted connector private endpoint regex",
     ["trusted_connector_private_endpoints_regex", REGEX]),
    (400, "Remote inference host name has private ip address: endpoint", [
        "plugins.ml_commons.connector.private_ip_enabled: true", "2.15"]),
    (400, "Remote inference host name has restricted ip address: 10.0.0.1", ["restricted_ip_patterns"]),
    (429, "Memory Circuit Breaker is open, please check your resources!", ["jvm_heap_memory_threshold", "2.15"]),
    (429, "Disk Circuit Breaker is open, please check your resources!", ["disk_free_space_threshold"]),
    (400, "1 models are still using this connector, please undeploy the models first: [abc]", ["undeploy"]),
    (409, "1 models are still using this connector, please delete or update the models first: [abc]",
     ["delete them first", "teardown"]),
    (400, "Model cannot be deleted in deploying or deployed state. Try undeploy model first then delete",
     ["undeploy the model first"]),
    (400, "Some parameter placeholder not filled in payload: inputs", ["sagemaker.contract", "${parameters.X}"]),
    (400, "Invalid payload: {\"inputs\": [}", ["not JSON"]),
    (400, "Invalid JSON in payload", ["not JSON"]),
    (400, "pre_process_function not defined in connector", ["pre-process script"]),
    (404, "The ML encryption master key has not been initialized yet. Please retry after waiting for 10 seconds.",
     ["wait 10 seconds", "retries this itself"]),
    (400, "Error from remote service: The request was denied due to remote server throttling. To change the retry "
          "policy and behavior, please update the connector client_config.", ["throttling", "max_retry_times"]),
    (400, "Error validating input schema, if you think this is expected, please update your 'input' field in the "
          "'interface' field for this model: x", ["without one"]),
    (400, "You cannot specify connector access control parameters because the Security plugin or connector access "
          "control is disabled on your cluster.", ["access_mode"]),
    (400, "You cannot specify model access control parameters because the Security plugin or model access control "
          "is disabled on your cluster.", ["access_mode"]),
    (400, "Model not ready yet. Please deploy the model first.", ["deploy the model"]),
    (400, "Connector credential is null or empty list", ["credential"]),
    (400, "Missing credential", ["roleArn", "connector.role_arn"]),
    (400, 'Error from remote service: {"message":"The security token included in the request is expired"}',
     ["rotate-credentials"]),
    (400, "The rerank result should contain index and relevance_score.", ["sagemaker.contract"]),
    (500, "scores and hits are not the same length", ["number of scores"]),
    (400, "No text documents were provided", ["empty page"]),
    (400, 'No document context found! Perhaps "context.document_fields" is missing from the pipeline definition?',
     ["pipeline.document_fields"]),
    (400, "Remote Inference is disabled, please check your cluster settings", ["remote_inference.enabled"]),
    (400, "Update connector API is currently disabled.", ["2.12"]),
    (400, "Wrong input type", ["2.12"]),
    (400, "The maximum number of statements that can be executed in a loop has been reached.", ["loop budget"]),
    (400, "Too many dynamic script compilations within, max: [75/5m]", ["static"]),
    (400, "The name you provided is already being used by a model group with ID: g1.", ["model.group"]),
    (429, "Error communicating with remote model: Acquire operation took longer than the configured maximum time",
     ["client_config"]),
    (424, 'Error from remote service: {"message":"Received client error (400) from primary"}',
     ["sagemaker.contract"]),
]


@pytest.mark.parametrize(("status", "reason", "words"), CASES, ids=[c[1][:40] for c in CASES])
def test_each_known_failure_has_its_fix(status: int, reason: str, words: list[str]) -> None:
    fix = diagnose(status, reason, url=URL)
    assert fix is not None
    for word in words:
        assert word in fix


def test_unknown_reasons_get_no_fix_but_overload_does() -> None:
    assert diagnose(400, "something nobody has seen") is None
    assert diagnose(429, "rejected execution") == "the cluster is overloaded (429): wait and retry"


def test_the_url_in_the_reason_wins_over_the_configured_one() -> None:
    fix = diagnose(400, "Connector URL is not matching the trusted connector endpoint regex, URL is: http://x:1/a",
                   url=URL)
    assert fix is not None and r"^http://x:1/a$" in fix


def test_diagnoser_binds_the_config_url_and_the_cluster_uses_it() -> None:
    from opensearchpy.exceptions import TransportError

    config = Config.model_validate({"sagemaker": {"region": "us-west-2", "endpoint_name": "os-rerank-cross-encoder",
                                                  "endpoint_url": URL}})

    class Transport:
        def perform_request(self, *args: object, **kwargs: object) -> object:
            raise TransportError(400, "illegal_argument_exception", {"error": {"root_cause": [{
                "type": "illegal_argument_exception",
                "reason": "Connector URL is not matching the trusted connector endpoint regex"}]}})

    class Client:
        transport = Transport()

    cluster = Cluster(client=Client(), url="http://os:9200", diagnose=diagnoser(config))
    with pytest.raises(Exception) as err:
        cluster.request("POST", "/_plugins/_ml/connectors/_create", body="{}")
    assert REGEX in (err.value.fix or "")  # type: ignore[attr-defined]


def test_open_cluster_installs_the_diagnosis() -> None:
    from os_rerank.provision.diagnose import open_cluster

    config = Config.model_validate({"sagemaker": {"region": "us-west-2", "endpoint_name": "os-rerank-cross-encoder",
                                                  "endpoint_url": URL}})
    fix = open_cluster(config).diagnose(400, "Connector URL is not matching the trusted connector endpoint regex")
    assert fix is not None and REGEX in fix


def test_every_command_opens_its_cluster_with_the_diagnosis() -> None:
    """The transport (cluster.connect) knows nothing of ML Commons: a command that connected with it directly would
    show users failures without their fix."""
    import ast
    from pathlib import Path

    import os_rerank.cli

    tree = ast.parse(Path(os_rerank.cli.__file__).read_text(encoding="utf-8"))
    direct = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              and node.module == "cluster" and any(a.name == "connect" for a in node.names)]
    assert direct == [], f"cli.py imports cluster.connect at line(s) {direct}: use diagnose.open_cluster"
