"""Reading the cluster: preflight, settings (flat, nested, indexed lists), resources by name, index, pipeline.
Responses are the recorded shapes in tests/data/opensearch/ where one exists."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from os_rerank.errors import ClusterError
from os_rerank.mlcommons import find_by_name
from os_rerank.provision.preflight import ClusterInfo, check_cluster, is_private_host, read_cluster_info
from os_rerank.provision.state import (
    PRIVATE_IP,
    TRUSTED_REGEX,
    read_index,
    read_pipeline,
    read_settings,
    read_state,
)
from tests.support.plans import make_config
from tests.support.scripted import cluster_for, error

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

SHAPES = Path(__file__).parent / "data" / "opensearch"


def shape(name: str) -> Any:
    return json.loads((SHAPES / f"{name}.json").read_text(encoding="utf-8"))


def test_preflight_reads_version_and_plugins_from_recorded_shapes() -> None:
    cluster, transport, _ = cluster_for([("GET", r"^/$", shape("root")),
                                         ("GET", r"^/_cat/plugins$", shape("cat_plugins"))])
    info = read_cluster_info(cluster)
    assert info.version == (2, 19, 0) and info.version_text == "2.19.0"
    assert {"opensearch-ml", "opensearch-neural-search"} <= info.plugins
    check_cluster(info)
    assert all(m == "GET" for m, _, _ in transport.sent)


def test_preflight_refuses_old_versions_and_missing_plugins() -> None:
    with pytest.raises(ClusterError) as err:
        check_cluster(ClusterInfo((2, 11, 0), "opensearch", frozenset({"opensearch-ml", "opensearch-neural-search"})))
    assert "OpenSearch 2.11.0 cannot rerank" in err.value.message
    with pytest.raises(ClusterError) as err:
        check_cluster(ClusterInfo((2, 19, 0), "opensearch", frozenset({"opensearch-ml"})))
    assert err.value.message == ("the cluster lacks the plugin(s) opensearch-neural-search "
                                 "(found: opensearch-ml)")


@pytest.mark.parametrize("settings", [
    {"persistent": {TRUSTED_REGEX: ["a", "b"], PRIVATE_IP: "true"}, "transient": {}, "defaults": {}},
    {"persistent": {f"{TRUSTED_REGEX}.0": "a", f"{TRUSTED_REGEX}.1": "b", PRIVATE_IP: "true"}},
    {"persistent": {"plugins": {"ml_commons": {"trusted_connector_endpoints_regex": ["a", "b"],
                                               "connector": {"private_ip_enabled": "true"}}}}},
    {"transient": {TRUSTED_REGEX: '["a","b"]', PRIVATE_IP: True}, "persistent": {TRUSTED_REGEX: ["c"]}},
])
def test_settings_in_every_shape(settings: dict[str, Any]) -> None:
    cluster, transport, _ = cluster_for([("GET", r"^/_cluster/settings$", settings)])
    scope = "transient" if settings.get("transient") else "persistent"
    assert read_settings(cluster, (2, 19, 0)) == (("a", "b"), True, True, scope)


def test_default_settings_count_as_not_set_and_private_ip_missing_before_2_15() -> None:
    cluster, _, _ = cluster_for([("GET", r"^/_cluster/settings$",
                                  {"persistent": {}, "transient": {}, "defaults": {TRUSTED_REGEX: ["d"]}})])
    assert read_settings(cluster, (2, 14, 0)) == (("d",), False, None, "persistent")
    assert read_settings(cluster, (2, 15, 0)) == (("d",), False, False, "persistent")


def test_find_by_name_searches_for_candidates_and_believes_only_the_get_by_id() -> None:
    """A search can lag writes (mlcommons.py): a hit that is gone, or renamed, or stale in state is not believed."""
    hits = {"hits": {"total": {"value": 4}, "hits": [
        {"_id": "b", "_source": {"name": "ours", "model_state": "REGISTERED"}},
        {"_id": "a", "_source": {"name": "ours"}},
        {"_id": "c", "_source": {"name": "ours"}},
        {"_id": "d", "_source": {"name": "ours"}}]}}
    cluster, transport, _ = cluster_for([
        ("POST", r"/models/_search$", hits),
        ("GET", r"/models/a$", {"name": "ours", "model_state": "DEPLOYED"}),
        ("GET", r"/models/b$", {"name": "ours", "model_state": "DEPLOYED"}),
        ("GET", r"/models/c$", error(404, "Failed to find model")),  # deleted; the search has not caught up
        ("GET", r"/models/d$", {"name": "renamed since"}),
    ])
    found = find_by_name(cluster, "models", "ours")
    assert [(f.id, f.model_state) for f in found] == [("a", "DEPLOYED"), ("b", "DEPLOYED")]
    assert json.loads(transport.sent[0][2] or "") == {"query": {"term": {"name.keyword": "ours"}}, "size": 1000}
    cluster, _, _ = cluster_for([("POST", r"/models/_search$", error(404, "no such index [.plugins-ml-model]"))])
    assert find_by_name(cluster, "models", "x") == ()
    cluster, _, _ = cluster_for([("POST", r"/models/_search$",
                                  error(400, "no such index [.plugins-ml-model] (index_not_found_exception)"))])
    assert find_by_name(cluster, "models", "x") == ()
    cluster, _, _ = cluster_for([("POST", r"/models/_search$", error(400, "parse failure"))])
    with pytest.raises(ClusterError):
        find_by_name(cluster, "models", "x")


def test_index_and_pipeline_reads() -> None:
    cluster, _, _ = cluster_for([
        ("GET", r"^/idx$", {"idx": {"mappings": {"properties": {"passage_text": {"type": "text"}}}}}),
        # one answer for the count (a size-0 search naming pipeline _none, never _count) and the documents
        ("POST", r"^/idx/_search$", {"hits": {"total": {"value": 1, "relation": "eq"},
                                              "hits": [{"_id": "d1", "_source": {"passage_text": "x"}}]}}),
        ("GET", r"^/_search/pipeline/my_pipeline$", shape("pipeline_get")),
    ])
    index = read_index(cluster, "idx")
    assert index is not None and (index.count, index.documents) == (1, {"d1": {"passage_text": "x"}})
    pipeline = read_pipeline(cluster, "my_pipeline")
    assert pipeline is not None
    assert pipeline["response_processors"][0]["rerank"]["ml_opensearch"] == {"model_id": "cleMb4kBJ1eYAeTMFFg4"}
    cluster, _, _ = cluster_for([("GET", r"^/idx$", error(404, "no such index")),
                                 ("GET", r"^/_search/pipeline/p$", error(404, "not found"))])
    assert read_index(cluster, "idx") is None and read_pipeline(cluster, "p") is None


def test_read_state_uses_gets_and_read_only_posts_only() -> None:
    empty_search = {"hits": {"total": {"value": 0}, "hits": []}}
    cluster, transport, _ = cluster_for([
        ("GET", r"^/_cluster/settings$", {"persistent": {}, "defaults": {TRUSTED_REGEX: []}}),
        ("POST", r"/_search$", empty_search),
        ("GET", r"^/my-test-data$", error(404, "no such index")),
        ("GET", r"^/_search/pipeline/", error(404, "not found")),
    ])
    state = read_state(cluster, make_config(), ClusterInfo((2, 19, 0), "opensearch", frozenset()))
    assert (state.connectors, state.models, state.index, state.pipeline) == ((), (), None, None)
    assert cluster.writes() == []


@pytest.mark.parametrize(("url", "private"), [
    ("http://127.0.0.1:8080/x", True), ("http://localhost:8080/x", True), ("http://10.1.2.3/x", True),
    ("http://192.168.0.9/x", True), ("http://[::1]:8080/x", True), ("http://169.254.169.254/x", True),
    ("https://8.8.8.8/x", False), ("https://runtime.sagemaker.us-west-2.amazonaws.com/x", False),
    ("https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/x", False),
    # A compose / Kubernetes service name: OpenSearch resolves it on its own (private) network.
    ("http://endpoint:8080/x", True),
])
def test_private_hosts(url: str, private: bool) -> None:
    def resolve(host: str, port: Any) -> list[Any]:
        raise AssertionError("literal IPs, localhost, AWS hosts and single-label names are not resolved")
    assert is_private_host(url, resolve) is private


def test_other_names_resolve_best_effort() -> None:
    def private(host: str, port: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("172.18.0.3", 0))]

    def public(host: str, port: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("52.94.1.1", 0))]

    def unknown(host: str, port: Any) -> list[Any]:
        raise socket.gaierror("nope")
    assert is_private_host("http://sm.corp.example:8080/x", private) is True
    assert is_private_host("https://reranker.example.com/x", public) is False
    # Not resolvable from here: OpenSearch sees a network we cannot, so allow private IPs rather than fail.
    assert is_private_host("http://sm.corp.example:8080/x", unknown) is True
