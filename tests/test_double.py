"""The OpenSearch + ML Commons double (tests/fakes/), driven through opensearch-py as the CLI drives a cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from os_rerank.contracts import REQUEST_BODY, get_contract
from os_rerank.server.app import DEFAULT_ENDPOINT_NAME, EndpointServer
from os_rerank.server.lexical import LexicalScorer
from tests.fakes import OpenSearchDouble
from tests.fakes.predict import THROTTLED

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
AKID, SECRET = "AKIDDOUBLETEST", "double-test-secret"
QUERY = "What is the capital of the United States?"
PASSAGES = [json.loads(line) for line in (ROOT / "os_rerank/data/sample_documents.jsonl").read_text().splitlines()]
SAGEMAKER_URL = "https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/e/invocations"
ML = "/_plugins/_ml"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[EndpointServer]:
    with EndpointServer(get_contract("hf-text-classification"), LexicalScorer(), credentials={AKID: SECRET}) as s:
        yield s


@pytest.fixture
def endpoint_server(endpoint: EndpointServer) -> EndpointServer:
    endpoint.clear_received()
    return endpoint


@pytest.fixture
def glued(opensearch_double: OpenSearchDouble) -> OpenSearchDouble:
    if opensearch_double.glue is None:
        pytest.skip("predict needs the Painless glue JVM (no JDK here)")
    return opensearch_double


def client_for(double: OpenSearchDouble) -> OpenSearch:
    return OpenSearch(hosts=[double.url], max_retries=0, timeout=30)


def call(double: OpenSearchDouble, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
         ) -> Any:
    return client_for(double).transport.perform_request(method, path, body=body, params=params)


def error(double: OpenSearchDouble, method: str, path: str, body: Any = None,
          params: dict[str, Any] | None = None) -> tuple[int, Any]:
    with pytest.raises(TransportError) as caught:
        call(double, method, path, body, params)
    return caught.value.status_code, caught.value.info


def reason(info: Any) -> str:
    return info["error"]["reason"]


def runtime_url(endpoint: EndpointServer) -> str:
    return f"{endpoint.url}/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations"


def trust(double: OpenSearchDouble, *extra: str, private_ip: bool = False) -> None:
    settings: dict[str, Any] = {"plugins.ml_commons.trusted_connector_endpoints_regex": [
        r"^https://runtime\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$", r"^http://127\.0\.0\.1:\d+/.*$", *extra]}
    if private_ip:
        settings["plugins.ml_commons.connector.private_ip_enabled"] = True
    call(double, "PUT", "/_cluster/settings", {"persistent": settings})


def connector(url: str, *, protocol: str = "aws_sigv4", client_config: dict[str, Any] | None = None,
              **overrides: Any) -> dict[str, Any]:
    contract = get_contract("hf-text-classification")
    body: dict[str, Any] = {
        "name": "os-rerank test", "description": "double", "version": "1", "protocol": protocol,
        "parameters": {"region": "us-west-2", "service_name": "sagemaker"},
        "credential": {"access_key": AKID, "secret_key": SECRET},
        "actions": [{
            "action_type": "predict", "method": "POST", "url": url,
            "headers": {"content-type": "application/json"}, "request_body": REQUEST_BODY,
            "pre_process_function": (ROOT / "painless" / contract.pre_process_file).read_text(),
            "post_process_function": (ROOT / "painless" / contract.post_process_file).read_text(),
        }],
    }
    if client_config is not None:
        body["client_config"] = client_config
    body.update(overrides)
    return body


def provision(double: OpenSearchDouble, endpoint: EndpointServer, *, deploy: bool = True,
              client_config: dict[str, Any] | None = None, **register: Any) -> tuple[str, str]:
    """(connector_id, model_id) of a remote model on the local endpoint."""
    trust(double, private_ip=double.state.version >= (2, 15, 0))
    connector_id = call(double, "POST", f"{ML}/connectors/_create",
                        connector(runtime_url(endpoint), client_config=client_config))["connector_id"]
    model = call(double, "POST", f"{ML}/models/_register",
                 {"name": "os-rerank model", "function_name": "remote", "connector_id": connector_id, **register})
    if deploy:
        call(double, "POST", f"{ML}/models/{model['model_id']}/_deploy")
    return connector_id, model["model_id"]


def predict(double: OpenSearchDouble, model_id: str, docs: list[str], query: str = QUERY) -> Any:
    return call(double, "POST", f"{ML}/_predict/text_similarity/{model_id}", {"query_text": query, "text_docs": docs})


def load_passages(double: OpenSearchDouble, index: str = "passages") -> None:
    call(double, "PUT", f"/{index}", {"mappings": {"properties": {"passage_text": {"type": "text"}}}})
    lines = []
    for doc in PASSAGES:
        lines += [json.dumps({"index": {"_index": index, "_id": doc["id"]}}),
                  json.dumps({"passage_text": doc["passage_text"]})]
    call(double, "POST", "/_bulk", "\n".join(lines) + "\n", params={"refresh": "true"})


# --- cluster basics ----------------------------------------------------------------------------------------------


def test_root_and_plugins_report_the_configured_version(opensearch_double: OpenSearchDouble) -> None:
    assert client_for(opensearch_double).info()["version"]["number"] == "2.19.0"
    opensearch_double.set_version("2.12.0")
    info = client_for(opensearch_double).info()
    assert (info["version"]["number"], info["version"]["distribution"]) == ("2.12.0", "opensearch")
    plugins = call(opensearch_double, "GET", "/_cat/plugins", params={"format": "json"})
    assert {"opensearch-ml", "opensearch-neural-search"} <= {p["component"] for p in plugins}
    assert {p["version"] for p in plugins} == {"2.12.0.0"}
    assert call(opensearch_double, "GET", "/_cluster/health")["status"] == "green"


def test_a_plugin_can_be_absent_and_its_routes_go_with_it() -> None:
    with OpenSearchDouble(absent_plugins=["opensearch-ml"]) as double:
        components = {p["component"] for p in call(double, "GET", "/_cat/plugins", params={"format": "json"})}
        assert "opensearch-ml" not in components
        status, info = error(double, "GET", f"{ML}/connectors/abc")
        assert (status, info) == (400, {"error": f"no handler found for uri [{ML}/connectors/abc] and method [GET]"})


def test_unknown_route_answers_like_opensearch(opensearch_double: OpenSearchDouble) -> None:
    assert error(opensearch_double, "GET", "/_nope/x") == (
        400, {"error": "no handler found for uri [/_nope/x] and method [GET]"})


# --- cluster settings (#cluster-settings) -----------------------------------------------------------------------------


def test_settings_defaults_follow_the_version(opensearch_double: OpenSearchDouble) -> None:
    key = "plugins.ml_commons.trusted_connector_endpoints_regex"
    defaults = call(opensearch_double, "GET", "/_cluster/settings",
                    params={"include_defaults": "true", "flat_settings": "true"})["defaults"]
    assert len(defaults[key]) == 10 and defaults["plugins.ml_commons.connector.private_ip_enabled"] == "false"
    opensearch_double.set_version("2.13.0")
    defaults = call(opensearch_double, "GET", "/_cluster/settings",
                    params={"include_defaults": "true", "flat_settings": "true"})["defaults"]
    assert len(defaults[key]) == 4
    assert "plugins.ml_commons.connector.private_ip_enabled" not in defaults
    nested = call(opensearch_double, "GET", "/_cluster/settings", params={"include_defaults": "true"})["defaults"]
    assert nested["plugins"]["ml_commons"]["model_auto_deploy"]["enable"] == "true"


def test_private_ip_setting_is_unknown_before_2_15(opensearch_double: OpenSearchDouble) -> None:
    body = {"persistent": {"plugins.ml_commons.connector.private_ip_enabled": True}}
    opensearch_double.set_version("2.14.0")
    status, info = error(opensearch_double, "PUT", "/_cluster/settings", body)
    assert status == 400 and info["error"]["type"] == "illegal_argument_exception"
    assert reason(info) == "persistent setting [plugins.ml_commons.connector.private_ip_enabled], not recognized"
    opensearch_double.set_version("2.15.0")
    answer = call(opensearch_double, "PUT", "/_cluster/settings", body)
    assert answer["persistent"] == {"plugins": {"ml_commons": {"connector": {"private_ip_enabled": "true"}}}}
    flat = call(opensearch_double, "GET", "/_cluster/settings", params={"flat_settings": "true"})
    assert flat == {"persistent": {"plugins.ml_commons.connector.private_ip_enabled": "true"}, "transient": {}}


def test_setting_the_trusted_list_replaces_the_defaults(opensearch_double: OpenSearchDouble) -> None:
    call(opensearch_double, "PUT", "/_cluster/settings",
         {"persistent": {"plugins.ml_commons.trusted_connector_endpoints_regex": [r"^http://mock:8080/.*$"]}})
    status, info = error(opensearch_double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))
    assert status == 400
    assert reason(info) == ("Connector URL is not matching the trusted connector endpoint regex, URL is: "
                            + SAGEMAKER_URL)
    assert call(opensearch_double, "POST", f"{ML}/connectors/_create", connector("http://mock:8080/invocations"))


# --- connectors (#connectors, #models) --------------------------------------------------------------------------------


def test_connector_create_validates_like_ml_commons(opensearch_double: OpenSearchDouble) -> None:
    def create_error(body: dict[str, Any]) -> str:
        status, info = error(opensearch_double, "POST", f"{ML}/connectors/_create", body)
        assert status == 400
        return reason(info)

    assert create_error(connector(SAGEMAKER_URL, credential={"access_key": AKID})) == "Missing credential"
    assert create_error(connector(SAGEMAKER_URL, parameters={"service_name": "sagemaker"})) == "Missing region"
    assert create_error(connector(SAGEMAKER_URL, credential={})) == "Connector credential is null or empty list"
    assert create_error(connector("https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/x")).endswith(
        "URL is: https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/x")
    # fullmatch semantics: a prefix match is not enough
    assert create_error(connector("http://evil/https://runtime.sagemaker.us-west-2.amazonaws.com/x"))
    opensearch_double.set_version("3.1.0")
    assert create_error(connector("http://mock/x")).endswith(", URL is: http://mock/x")
    opensearch_double.set_version("3.2.0")
    assert create_error(connector("http://mock/x")) == (
        "Connector URL is not matching the trusted connector endpoint regex")


def test_connector_credential_is_stored_but_never_returned(opensearch_double: OpenSearchDouble) -> None:
    connector_id = call(opensearch_double, "POST", f"{ML}/connectors/_create",
                        connector(SAGEMAKER_URL, client_config={"read_timeout": 30}))["connector_id"]
    got = call(opensearch_double, "GET", f"{ML}/connectors/{connector_id}")
    assert "credential" not in got
    assert got["actions"][0]["action_type"] == "PREDICT"
    assert got["client_config"]["read_timeout"] == 30 and got["client_config"]["max_retry_times"] == 0
    assert opensearch_double.state.connectors[connector_id]["credential"]["secret_key"] == SECRET
    opensearch_double.settle_searches()
    found = call(opensearch_double, "POST", f"{ML}/connectors/_search",
                 {"query": {"term": {"name.keyword": "os-rerank test"}}, "size": 1})
    assert [h["_id"] for h in found["hits"]["hits"]] == [connector_id]
    assert "credential" not in found["hits"]["hits"][0]["_source"]
    none = call(opensearch_double, "POST", f"{ML}/connectors/_search", {"query": {"term": {"name.keyword": "x"}}})
    assert none["hits"]["total"] == {"value": 0, "relation": "eq"}
    status, info = error(opensearch_double, "GET", f"{ML}/connectors/nope")
    assert (status, reason(info)) == (404, "Failed to find connector with the provided connector id: nope")


def test_client_config_is_dropped_on_2_12(opensearch_double: OpenSearchDouble) -> None:
    opensearch_double.set_version("2.12.0")
    connector_id = call(opensearch_double, "POST", f"{ML}/connectors/_create",
                        connector(SAGEMAKER_URL, client_config={"read_timeout": 30}))["connector_id"]
    assert "client_config" not in call(opensearch_double, "GET", f"{ML}/connectors/{connector_id}")


def test_fresh_cluster_master_key_race() -> None:
    with OpenSearchDouble(master_key_failures=1) as double:
        status, info = error(double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))
        assert info["error"]["type"] == "resource_not_found_exception" and status == 404
        assert reason(info) == ("The ML encryption master key has not been initialized yet. "
                                "Please retry after waiting for 10 seconds.")
        assert call(double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))["connector_id"]


def test_update_merges_parameters_and_refuses_while_deployed(opensearch_double: OpenSearchDouble,
                                                             endpoint_server: EndpointServer) -> None:
    connector_id, model_id = provision(opensearch_double, endpoint_server)
    status, info = error(opensearch_double, "PUT", f"{ML}/connectors/{connector_id}", {"parameters": {"x": "1"}})
    assert (status, reason(info)) == (
        400, f"1 models are still using this connector, please undeploy the models first: [{model_id}]")
    undeployed = call(opensearch_double, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert list(undeployed.values()) == [{"stats": {model_id: "undeployed"}}]
    updated = call(opensearch_double, "PUT", f"{ML}/connectors/{connector_id}", {"parameters": {"x": "1"}})
    assert updated["result"] == "updated"
    got = call(opensearch_double, "GET", f"{ML}/connectors/{connector_id}")
    assert got["parameters"] == {"region": "us-west-2", "service_name": "sagemaker", "x": "1"}
    again = call(opensearch_double, "PUT", f"{ML}/connectors/{connector_id}", {"parameters": {"x": "1"}})
    assert again["result"] == "noop"


def test_teardown_order_is_enforced(opensearch_double: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    connector_id, model_id = provision(opensearch_double, endpoint_server)
    status, info = error(opensearch_double, "DELETE", f"{ML}/models/{model_id}")
    assert (status, reason(info)) == (
        400, "Model cannot be deleted in deploying or deployed state. Try undeploy model first then delete")
    call(opensearch_double, "POST", f"{ML}/models/{model_id}/_undeploy")
    status, info = error(opensearch_double, "DELETE", f"{ML}/connectors/{connector_id}")
    assert (status, reason(info)) == (
        409, f"1 models are still using this connector, please delete or update the models first: [{model_id}]")
    assert call(opensearch_double, "DELETE", f"{ML}/models/{model_id}")["result"] == "deleted"
    assert call(opensearch_double, "DELETE", f"{ML}/connectors/{connector_id}")["result"] == "deleted"
    assert error(opensearch_double, "GET", f"{ML}/models/{model_id}")[0] == 404


# --- model groups, models, tasks (#models) ----------------------------------------------------------------------------


def test_model_group_names_are_unique(opensearch_double: OpenSearchDouble) -> None:
    group = call(opensearch_double, "POST", f"{ML}/model_groups/_register", {"name": "g", "description": "d"})
    assert group["status"] == "CREATED"
    status, info = error(opensearch_double, "POST", f"{ML}/model_groups/_register", {"name": "g"})
    assert (status, reason(info)) == (
        400, f"The name you provided is already being used by a model group with ID: {group['model_group_id']}.")
    opensearch_double.settle_searches()
    found = call(opensearch_double, "POST", f"{ML}/model_groups/_search", {"query": {"term": {"name.keyword": "g"}}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [group["model_group_id"]]


def test_register_deploy_and_tasks(opensearch_double: OpenSearchDouble) -> None:
    connector_id = call(opensearch_double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))["connector_id"]
    registered = call(opensearch_double, "POST", f"{ML}/models/_register",
                      {"name": "m", "function_name": "remote", "connector_id": connector_id})
    assert registered["status"] == "CREATED"
    task = call(opensearch_double, "GET", f"{ML}/tasks/{registered['task_id']}")
    assert (task["task_type"], task["state"], task["model_id"]) == ("REGISTER_MODEL", "COMPLETED",
                                                                    registered["model_id"])
    model = call(opensearch_double, "GET", f"{ML}/models/{registered['model_id']}")
    assert (model["model_state"], model["algorithm"], model["connector_id"]) == ("REGISTERED", "REMOTE", connector_id)
    group = call(opensearch_double, "GET", f"{ML}/model_groups/{model['model_group_id']}")
    assert group["name"] == "m"  # a group named like the model was created
    deployed = call(opensearch_double, "POST", f"{ML}/models/{registered['model_id']}/_deploy")
    assert (deployed["task_type"], deployed["status"]) == ("DEPLOY_MODEL", "COMPLETED")
    assert call(opensearch_double, "GET", f"{ML}/tasks/{deployed['task_id']}")["state"] == "COMPLETED"
    assert call(opensearch_double, "GET", f"{ML}/models/{registered['model_id']}")["model_state"] == "DEPLOYED"
    opensearch_double.settle_searches()
    by_keyword = {"query": {"term": {"connector_id.keyword": connector_id}}}
    assert call(opensearch_double, "POST", f"{ML}/models/_search", by_keyword)["hits"]["total"]["value"] == 1
    # As on a real node: the model index maps connector_id as analyzed text, so a term on the field itself only
    # meets lower-cased word tokens, never an id with capitals.
    assert connector_id != connector_id.lower()
    by_text = {"query": {"term": {"connector_id": connector_id}}}
    assert call(opensearch_double, "POST", f"{ML}/models/_search", by_text)["hits"]["total"]["value"] == 0


def test_ml_searches_lag_writes_as_on_a_real_node() -> None:
    """Seen on 2.19.1: for about a second a search misses a new resource, shows a deployed model as REGISTERED and
    still returns a deleted one, while GET by id is current. The double is never kinder."""
    with OpenSearchDouble(ml_search_lag=30.0) as double:
        query = {"query": {"term": {"name.keyword": "m"}}}

        def searched() -> list[tuple[str, str]]:
            hits = call(double, "POST", f"{ML}/models/_search", query)["hits"]["hits"]
            return [(h["_id"], h["_source"]["model_state"]) for h in hits]

        connector_id = call(double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))["connector_id"]
        model_id = call(double, "POST", f"{ML}/models/_register",
                        {"name": "m", "function_name": "remote", "connector_id": connector_id})["model_id"]
        assert searched() == []  # not refreshed yet
        double.settle_searches()
        call(double, "POST", f"{ML}/models/{model_id}/_deploy")
        assert call(double, "GET", f"{ML}/models/{model_id}")["model_state"] == "DEPLOYED"
        assert searched() == [(model_id, "REGISTERED")]  # the search still has the old state
        double.settle_searches()
        assert searched() == [(model_id, "DEPLOYED")]
        call(double, "POST", f"{ML}/models/{model_id}/_undeploy")
        call(double, "DELETE", f"{ML}/models/{model_id}")
        assert error(double, "GET", f"{ML}/models/{model_id}")[0] == 404
        assert searched() == [(model_id, "DEPLOYED")]  # deleted, still found
        double.settle_searches()
        assert searched() == []


def test_register_with_deploy_true_is_fire_and_forget(opensearch_double: OpenSearchDouble) -> None:
    connector_id = call(opensearch_double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))["connector_id"]
    registered = call(opensearch_double, "POST", f"{ML}/models/_register",
                      {"name": "m", "function_name": "remote", "connector_id": connector_id},
                      params={"deploy": "true"})
    assert set(registered) == {"task_id", "status", "model_id"}
    states = [call(opensearch_double, "GET", f"{ML}/models/{registered['model_id']}")["model_state"]
              for _ in range(3)]
    assert states == ["DEPLOYING", "DEPLOYED", "DEPLOYED"]


# --- predict, end to end against the local endpoint (#predict, #failures) ---------------------------------------------


def test_predict_calls_the_endpoint_signed_and_returns_tensors(glued: OpenSearchDouble,
                                                               endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    docs = [p["passage_text"] for p in PASSAGES]
    answer = predict(glued, model_id, docs)
    output = answer["inference_results"][0]["output"]
    assert answer["inference_results"][0]["status_code"] == 200
    assert [(t["name"], t["data_type"], t["shape"]) for t in output] == [("similarity", "FLOAT32", [1])] * 4
    scores = [t["data"][0] for t in output]
    assert max(range(4), key=lambda i: scores[i]) == 2  # Washington, D.C.
    sent = json.loads(endpoint_server.received[-1].text)
    assert sent == {"inputs": [{"text": QUERY, "text_pair": d} for d in docs]}
    assert glued.remote_calls[-1]["headers"]["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")


def test_predict_text_survives_the_escaping_chain(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    docs = ['say "hi"', "don't <b>", "line1\nline2\ttab", "back\\slash ${parameters.body}", "한국어 हिन्दी 🙂"]
    predict(glued, model_id, docs, query="q's \"quoted\"")
    sent = json.loads(endpoint_server.received[-1].text)
    assert [pair["text_pair"] for pair in sent["inputs"]] == docs
    assert sent["inputs"][0]["text"] == "q's \"quoted\""


def test_predict_needs_a_deployed_model_on_2_12(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    glued.set_version("2.12.0")
    _, model_id = provision(glued, endpoint_server, deploy=False)
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert (status, reason(info)) == (400, "Model not ready yet. Please deploy the model first.")
    glued.set_version("2.13.0")  # model_auto_deploy.enable, default true
    assert predict(glued, model_id, ["a"])["inference_results"]
    assert glued.state.models[model_id]["model_state"] == "DEPLOYED"


def test_predict_input_errors(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": []})
    assert (status, reason(info)) == (400, "No text documents were provided")
    _, with_interface = provision(glued, endpoint_server, interface={
        "input": {"type": "object", "properties": {"parameters": {"type": "object"}}, "required": ["parameters"]}})
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{with_interface}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert status == 400 and reason(info).startswith(
        "Error validating input schema, if you think this is expected, please update your 'input' field in the "
        "'interface' field for this model")


def test_remote_errors_come_back_as_ml_commons_reports_them(glued: OpenSearchDouble,
                                                            endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    endpoint_server.fail_next(500, {"message": "boom"})
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert status == 500 and reason(info).startswith("Error from remote service: ")
    assert "boom" in reason(info)


def test_throttling_is_retried_from_2_15(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    config = {"max_retry_times": 2, "retry_backoff_millis": 1, "read_timeout": 10, "connection_timeout": 10}
    _, model_id = provision(glued, endpoint_server, client_config=config)
    endpoint_server.fail_next(400, {"message": None}, count=2, error_type="ThrottlingException")
    assert predict(glued, model_id, ["a"])["inference_results"]  # two retries, then success
    endpoint_server.fail_next(400, {"message": None}, count=3, error_type="ThrottlingException")
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert (status, reason(info)) == (400, THROTTLED)
    glued.reset()
    glued.set_version("2.14.0")
    _, model_id = provision(glued, endpoint_server, client_config=config)
    endpoint_server.fail_next(400, {"message": None}, count=1, error_type="ThrottlingException")
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert (status, reason(info)) == (400, 'Error from remote service: {"message": null}')


def test_private_ip_rule_per_version_and_protocol(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    glued.set_version("3.4.0")
    trust(glued)
    connector_id = call(glued, "POST", f"{ML}/connectors/_create", connector(runtime_url(endpoint_server)))[
        "connector_id"]
    model_id = call(glued, "POST", f"{ML}/models/_register",
                    {"name": "m", "function_name": "remote", "connector_id": connector_id},
                    params={"deploy": "true"})["model_id"]
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert (status, reason(info)) == (400, "Remote inference host name has private ip address: 127.0.0.1")
    trust(glued, private_ip=True)
    assert predict(glued, model_id, ["a"])["inference_results"]
    # 2.14: an http connector to a private host has no way through
    glued.reset()
    glued.set_version("2.14.0")
    trust(glued)
    body = connector(f"{endpoint_server.url}/invocations", protocol="http", parameters={})
    connector_id = call(glued, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    model_id = call(glued, "POST", f"{ML}/models/_register",
                    {"name": "m", "function_name": "remote", "connector_id": connector_id})["model_id"]
    call(glued, "POST", f"{ML}/models/{model_id}/_deploy")
    status, info = error(glued, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                         {"query_text": QUERY, "text_docs": ["a"]})
    assert reason(info) == "Remote inference host name has private ip address: 127.0.0.1"


def test_deployed_model_keeps_the_connector_it_loaded(glued: OpenSearchDouble,
                                                      endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    glued.state.connectors[next(iter(glued.state.connectors))]["actions"][0]["url"] = "http://127.0.0.1:9/x"
    assert predict(glued, model_id, ["a"])["inference_results"]  # still the deploy-time copy


# --- indices and lexical search ----------------------------------------------------------------------------------


def test_index_lifecycle_and_errors(opensearch_double: OpenSearchDouble) -> None:
    load_passages(opensearch_double)
    status, info = error(opensearch_double, "PUT", "/passages", {})
    assert status == 400 and info["error"]["type"] == "resource_already_exists_exception"
    assert reason(info).startswith("index [passages/")
    assert client_for(opensearch_double).indices.exists(index="passages")
    assert call(opensearch_double, "GET", "/passages/_count")["count"] == 4
    mapping = call(opensearch_double, "GET", "/passages/_mapping")
    assert mapping["passages"]["mappings"]["properties"]["passage_text"] == {"type": "text"}
    assert call(opensearch_double, "DELETE", "/passages") == {"acknowledged": True}
    assert not client_for(opensearch_double).indices.exists(index="passages")
    status, info = error(opensearch_double, "POST", "/passages/_search", {})
    assert status == 404 and info["error"]["root_cause"][0] == {
        "type": "index_not_found_exception", "reason": "no such index [passages]", "index": "passages",
        "resource.id": "passages", "resource.type": "index_or_alias", "index_uuid": "_na_"}


def test_documents_are_searchable_after_a_refresh(opensearch_double: OpenSearchDouble) -> None:
    double = OpenSearchDouble(refresh_interval=3600).start()
    try:
        call(double, "POST", "/_bulk", '{"index":{"_index":"i","_id":"1"}}\n{"t":"x"}\n')
        assert call(double, "GET", "/i/_count")["count"] == 0
        call(double, "POST", "/i/_refresh")
        assert call(double, "GET", "/i/_count")["count"] == 1
    finally:
        double.stop()


def test_search_is_lexical_bm25(opensearch_double: OpenSearchDouble) -> None:
    load_passages(opensearch_double)
    answer = call(opensearch_double, "POST", "/passages/_search",
                  {"query": {"match": {"passage_text": QUERY}}, "size": 4, "_source": ["passage_text"]})
    hits = answer["hits"]["hits"]
    assert answer["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert [h["_id"] for h in hits[:2]] in (["seed-4", "seed-3"], ["seed-3", "seed-4"])
    assert hits[0]["_score"] == answer["hits"]["max_score"]
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    multi = call(opensearch_double, "POST", "/passages/_search",
                 {"query": {"multi_match": {"query": "Saipan", "fields": ["passage_text"]}}})
    assert [h["_id"] for h in multi["hits"]["hits"]] == ["seed-2"]
    page = call(opensearch_double, "POST", "/passages/_search",
                {"query": {"match_all": {}}, "from": 1, "size": 2, "track_total_hits": False, "_source": False})
    assert "total" not in page["hits"] and [set(h) for h in page["hits"]["hits"]] == [{"_index", "_id", "_score"}] * 2


# --- search pipelines and rerank (#rerank-processor) ------------------------------------------------------------------


def rerank_pipeline(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"response_processors": [{"rerank": {"ml_opensearch": {"model_id": model_id},
                                                "context": {"document_fields": ["passage_text"]}, **extra}}]}


def test_pipeline_validation_texts(opensearch_double: OpenSearchDouble) -> None:
    def put_error(rerank: dict[str, Any]) -> tuple[str, str]:
        _, info = error(opensearch_double, "PUT", "/_search/pipeline/p", {"response_processors": [{"rerank": rerank}]})
        return info["error"]["type"], reason(info)

    assert put_error({"context": {"document_fields": ["a"]}}) == (
        "illegal_argument_exception", "No rerank type found. Possible rerank types are: [ml_opensearch, by_field]")
    assert put_error({"ml_opensearch": {"model_id": "m"}, "by_field": {"target_field": "x"}})[1] == (
        "Multiple rerank types found: [ml_opensearch, by_field]. Only one is permitted.")
    assert put_error({"ml_opensearch": {"model_id": "m"}}) == ("parse_exception",
                                                               "[context] required property is missing")
    assert put_error({"ml_opensearch": {"model_id": "m"}, "context": {"document_fields": []}})[1] == (
        "document_fields must be nonempty")
    assert put_error({"ml_opensearch": {"model_id": "m"}, "context": {"document_fields": "a"}})[1] == (
        "document_fields must be a list of field names")
    assert put_error({"ml_opensearch": {"model_id": "m"}, "context": {"document_fields": ["a"], "x": 1}})[1] == (
        "unrecognized context field: x")
    call(opensearch_double, "PUT", "/_search/pipeline/p", rerank_pipeline("m"))
    assert call(opensearch_double, "GET", "/_search/pipeline/p") == {"p": rerank_pipeline("m")}
    assert error(opensearch_double, "GET", "/_search/pipeline/other") == (404, {})
    assert call(opensearch_double, "DELETE", "/_search/pipeline/p") == {"acknowledged": True}


def test_rerank_pipeline_reorders_by_model_score(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    load_passages(glued)
    call(glued, "PUT", "/_search/pipeline/rerank", rerank_pipeline(model_id))
    body = {"query": {"match": {"passage_text": QUERY}}, "size": 4,
            "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    answer = call(glued, "POST", "/passages/_search", body, params={"search_pipeline": "rerank"})
    hits = answer["hits"]["hits"]
    assert hits[0]["_id"] == "seed-3"
    assert answer["hits"]["max_score"] == hits[0]["_score"]
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    sent = json.loads(endpoint_server.received[-1].text)
    lexical = call(glued, "POST", "/passages/_search", {"query": body["query"], "size": 4})
    assert [p["text_pair"] for p in sent["inputs"]] == [h["_source"]["passage_text"] for h in
                                                        lexical["hits"]["hits"]]


def test_rerank_failure_modes(glued: OpenSearchDouble, endpoint_server: EndpointServer) -> None:
    _, model_id = provision(glued, endpoint_server)
    load_passages(glued)
    call(glued, "PUT", "/_search/pipeline/rerank", rerank_pipeline(model_id))
    call(glued, "PUT", "/_search/pipeline/lenient", rerank_pipeline(model_id, ignore_failure=True))
    query = {"query": {"match": {"passage_text": QUERY}}}
    ext = {"ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    status, info = error(glued, "POST", "/passages/_search", query, params={"search_pipeline": "rerank"})
    assert status == 500 and info["error"]["root_cause"][0]["type"] == "null_pointer_exception"
    status, info = error(glued, "POST", "/passages/_search", {**query, **ext, "size": 0},
                         params={"search_pipeline": "rerank"})
    assert (status, info["error"]["root_cause"][0]["reason"]) == (400, "No text documents were provided")
    calls = len(endpoint_server.received)
    nothing = call(glued, "POST", "/passages/_search", {"query": {"match": {"passage_text": "zzz"}}, **ext},
                   params={"search_pipeline": "rerank"})
    assert nothing["hits"]["total"]["value"] == 0 and len(endpoint_server.received) == calls
    endpoint_server.fail_next(500, {"message": "down"})
    passed = call(glued, "POST", "/passages/_search", {**query, **ext}, params={"search_pipeline": "lenient"})
    lexical = call(glued, "POST", "/passages/_search", query)
    assert passed["hits"] == lexical["hits"]
    status, info = error(glued, "POST", "/passages/_search", {**query, **ext}, params={"search_pipeline": "nope"})
    assert (status, reason(info)) == (400, "Pipeline nope is not defined")


# --- recording and fault injection -------------------------------------------------------------------------------


def test_writes_are_recorded_and_read_only_posts_are_not_writes(opensearch_double: OpenSearchDouble) -> None:
    load_passages(opensearch_double)
    call(opensearch_double, "POST", "/passages/_search", {})
    call(opensearch_double, "POST", "/passages/_count", {})
    call(opensearch_double, "GET", "/passages/_mapping")
    assert [(w.method, w.path, w.status) for w in opensearch_double.writes()] == [
        ("PUT", "/passages", 200), ("POST", "/_bulk", 200)]
    assert opensearch_double.requests[-1].method == "GET"


def test_inject_fails_the_next_matching_requests(opensearch_double: OpenSearchDouble) -> None:
    opensearch_double.inject("PUT", r"^/passages$", status=429)
    status, info = error(opensearch_double, "PUT", "/passages", {})
    assert status == 429 and info["error"]["type"] == "rejected_execution_exception"
    assert call(opensearch_double, "PUT", "/passages", {})["acknowledged"]  # times=1: only once
    opensearch_double.inject("*", "connectors", status=503, times=2)
    for _ in range(2):
        assert error(opensearch_double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))[0] == 503
    assert [r.status for r in opensearch_double.requests[-2:]] == [503, 503]


def test_drop_closes_the_connection_without_an_answer(opensearch_double: OpenSearchDouble) -> None:
    opensearch_double.drop("PUT", "/passages")
    with pytest.raises(OSConnectionError):
        call(opensearch_double, "PUT", "/passages", {})
    assert "passages" not in opensearch_double.state.indices
    assert opensearch_double.requests[-1].status == 0
    opensearch_double.drop("POST", "_create", applied=True)
    with pytest.raises(OSConnectionError):
        call(opensearch_double, "POST", f"{ML}/connectors/_create", connector(SAGEMAKER_URL))
    assert len(opensearch_double.state.connectors) == 1  # the write happened, its answer was lost
    assert call(opensearch_double, "GET", "/")["version"]["number"] == "2.19.0"  # the server carries on


def test_reset_gives_an_empty_cluster(opensearch_double: OpenSearchDouble) -> None:
    load_passages(opensearch_double)
    opensearch_double.inject("GET", "/", status=503)
    opensearch_double.reset()
    assert opensearch_double.requests == [] and opensearch_double.state.indices == {}
    assert call(opensearch_double, "GET", "/")["version"]["number"] == "2.19.0"
