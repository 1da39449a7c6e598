"""apply_plan against a scripted transport under the real Cluster wrapper: order of writes, retries, polling,
and the half-done message. (End-to-end runs against the double are in tests/scenarios/.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import os_rerank.cluster
import os_rerank.errors
import os_rerank.mlcommons
import os_rerank.provision.apply
from os_rerank.cluster import Cluster
from os_rerank.credentials import ConnectorCredential
from os_rerank.errors import ClusterError, OsRerankError
from os_rerank.provision.apply import Event, apply_plan
from os_rerank.provision.plan import make_plan
from os_rerank.provision.state import ClusterState, Found
from tests.support.plans import desired, empty, full, make_config
from tests.support.scripted import Seq, Transport, cluster_for, error

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

CREDENTIAL = ConnectorCredential({"access_key": "AKIDAPPLYTEST", "secret_key": "apply-secret-xyz"})
Answer = Callable[[str, str, Any], Any]


CREATE_ALL = [
    ("PUT", r"^/_cluster/settings$", {"acknowledged": True}),
    ("POST", r"/connectors/_create$", {"connector_id": "c1"}),
    ("POST", r"/model_groups/_register$", {"model_group_id": "g1", "status": "CREATED"}),
    ("POST", r"/models/_register$", {"task_id": "t1", "status": "CREATED", "model_id": "m1"}),
    ("POST", r"/models/m1/_deploy$", {"task_id": "t2", "status": "COMPLETED"}),
    ("GET", r"/models/m1$", {"model_state": "DEPLOYED"}),
    ("PUT", r"^/my-test-data$", {"acknowledged": True}),
    ("POST", r"^/_bulk", {"errors": False, "items": []}),
    ("PUT", r"^/_search/pipeline/", {"acknowledged": True}),
]


SETTLED: list[tuple[str, Any, list[str], list[str]]] = []


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os_rerank.cluster, "RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(os_rerank.provision.apply, "POLL_SECONDS", 0.001)
    SETTLED.clear()

    def settled(cluster: Cluster, kind: str, query: Any, *, present: Any = (), absent: Any = (), **_: Any) -> bool:
        SETTLED.append((kind, query, list(present), list(absent)))  # what apply waits to see in search
        return True

    monkeypatch.setattr(os_rerank.mlcommons, "await_search", settled)


def writes(transport: Transport) -> list[str]:
    return [f"{m} {p}" for m, p, _ in transport.sent if m != "GET"]


def test_create_everything_in_order_with_the_real_credential() -> None:
    cluster, transport, _ = cluster_for(CREATE_ALL)
    events: list[Event] = []
    result = apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL, events.append)
    assert (result.connector_id, result.model_group_id, result.model_id) == ("c1", "g1", "m1")
    assert writes(transport) == [
        "PUT /_cluster/settings", "POST /_plugins/_ml/connectors/_create", "POST /_plugins/_ml/model_groups/_register",
        "POST /_plugins/_ml/models/_register", "POST /_plugins/_ml/models/m1/_deploy", "PUT /my-test-data",
        "POST /_bulk?refresh=true", "PUT /_search/pipeline/rerank_pipeline_sagemaker"]
    connector = json.loads(transport.sent[1][2] or "")
    assert connector["credential"] == CREDENTIAL.values
    model = json.loads(transport.sent[3][2] or "")
    assert (model["connector_id"], model["model_group_id"]) == ("c1", "g1")
    assert "interface" not in model
    assert [e.line() for e in events if e.kind == "create"][0] == \
        "+ connector os-rerank sagemaker cross-encoder created (id c1)"
    assert len(result.steps) == 9  # two settings, connector, group, register, deploy, index, documents, pipeline
    # Before it returns, apply waits until ML Commons' (near-real-time) search shows what it created.
    assert SETTLED == [
        ("connectors", {"term": {"name.keyword": "os-rerank sagemaker cross-encoder"}}, ["c1"], []),
        ("model_groups", {"term": {"name.keyword": "os-rerank"}}, ["g1"], []),
        ("models", {"term": {"name.keyword": "os-rerank cross-encoder"}}, ["m1"], []),
    ]


def test_nothing_to_do_sends_nothing() -> None:
    want = desired()
    cluster, transport, _ = cluster_for([])
    result = apply_plan(make_plan(want, full(want)), cluster, make_config(), CREDENTIAL)
    assert transport.sent == [] and result.steps == []
    assert {e.kind for e in result.events} == {"unchanged"}
    assert (result.connector_id, result.model_id) == ("c1", "m1")


def test_master_key_not_ready_is_retried_with_backoff() -> None:
    key = error(404, "The ML encryption master key has not been initialized yet. Please retry after waiting for "
                     "10 seconds.")
    routes = [r if "_create" not in r[1] else (r[0], r[1], Seq([key, key, {"connector_id": "c1"}])) for r in CREATE_ALL]
    cluster, transport, sleeps = cluster_for(routes)
    events: list[Event] = []
    apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL, events.append)
    assert [e.kind for e in events].count("retry") == 2
    assert len(sleeps) == 2 and sleeps[1] == 2 * sleeps[0]
    assert writes(transport).count("POST /_plugins/_ml/connectors/_create") == 3


def test_failure_says_what_finished_and_that_setup_completes_it() -> None:
    routes = [r if "models/_register" not in r[1] else (r[0], r[1], error(500, "boom")) for r in CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    with pytest.raises(ClusterError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    lines = err.value.message.splitlines()
    assert lines[0] == ("setup stopped at model 'os-rerank cross-encoder': POST /_plugins/_ml/models/_register: "
                        "500 boom (x)")
    assert lines[1].startswith("finished before it stopped: cluster setting plugins.ml_commons.trusted_connector_")
    assert "connector os-rerank sagemaker cross-encoder created (id c1); model group os-rerank created (id g1)" \
        in lines[1]
    assert lines[2] == ("not done: model os-rerank cross-encoder; index my-test-data; documents my-test-data; "
                        "pipeline rerank_pipeline_sagemaker")
    assert err.value.fix == "run `os-rerank setup` again: it finds what exists by name and completes the rest"
    assert err.value.exit_code == 4 and err.value.status == 500


def test_deploy_failed_is_a_clear_error() -> None:
    routes = [r if r[1] != r"/models/m1$" else (r[0], r[1], {"model_state": "DEPLOY_FAILED"}) for r in CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    with pytest.raises(ClusterError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    assert "model m1 is DEPLOY_FAILED" in err.value.message
    assert "circuit breaker" in (err.value.fix or "")


def test_deploy_is_polled_until_deployed_and_times_out() -> None:
    polls = Seq([{"model_state": "DEPLOYING"}, {"model_state": "DEPLOYING"}, {"model_state": "DEPLOYED"}])
    routes = [r if r[1] != r"/models/m1$" else (r[0], r[1], polls) for r in CREATE_ALL]
    cluster, transport, _ = cluster_for(routes)
    apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    assert [p for m, p, _ in transport.sent if m == "GET"] == ["/_plugins/_ml/models/m1"] * 3

    routes = [r if r[1] != r"/models/m1$" else (r[0], r[1], {"model_state": "DEPLOYING"}) for r in CREATE_ALL]
    cluster, transport, _ = cluster_for(routes)
    with pytest.raises(ClusterError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL, deploy_timeout=0.005)
    assert "model m1 is still DEPLOYING after 0.005s" in err.value.message
    assert [p for m, p, _ in transport.sent if m == "GET"] == ["/_plugins/_ml/models/m1"] * 5


def test_register_answering_with_a_task_is_followed_to_the_model_id() -> None:
    routes = [("POST", r"/models/_register$", {"task_id": "t1", "status": "CREATED"}),
              ("GET", r"/tasks/t1$", Seq([{"state": "RUNNING"}, {"state": "COMPLETED", "model_id": "m1"}])),
              *CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    assert apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL).model_id == "m1"


def test_connector_update_undeploys_updates_and_redeploys() -> None:
    state = full(desired())
    plan = make_plan(desired(connector={"client_config": {"read_timeout": 60}}), state)
    cluster, transport, _ = cluster_for([
        ("POST", r"/models/m1/_undeploy$", {"node": {"stats": {"m1": "undeployed"}}}),
        ("PUT", r"/connectors/c1$", {"result": "updated"}),
        *CREATE_ALL])
    apply_plan(plan, cluster, make_config(connector={"client_config": {"read_timeout": 60}}), CREDENTIAL)
    assert writes(transport) == ["POST /_plugins/_ml/models/m1/_undeploy", "PUT /_plugins/_ml/connectors/c1",
                                 "POST /_plugins/_ml/models/m1/_deploy"]
    assert json.loads(transport.sent[1][2] or "")["client_config"]["read_timeout"] == 60


def test_a_connector_update_that_still_sees_the_undeployed_model_is_retried() -> None:
    """On 2.19.1 the update's check can still count a model whose undeploy has answered (docs/ml-commons.md)."""
    state = full(desired())
    plan = make_plan(desired(connector={"client_config": {"read_timeout": 60}}), state)
    busy = error(400, "1 models are still using this connector, please undeploy the models first: [m1]")
    cluster, transport, sleeps = cluster_for([
        ("POST", r"/models/m1/_undeploy$", {"node": {"stats": {"m1": "undeployed"}}}),
        ("PUT", r"/connectors/c1$", Seq([busy, busy, {"result": "updated"}])),
        *CREATE_ALL])
    events: list[Event] = []
    apply_plan(plan, cluster, make_config(connector={"client_config": {"read_timeout": 60}}), CREDENTIAL,
               events.append)
    assert writes(transport).count("PUT /_plugins/_ml/connectors/c1") == 3
    assert [e.kind for e in events].count("retry") == 2 and len(sleeps) == 2


def test_a_connector_in_use_without_an_undeploy_is_not_retried() -> None:
    """The refusal is only transient right after our own undeploy; otherwise it is the answer."""
    busy = error(400, "1 models are still using this connector, please undeploy the models first: [m9]")
    state = full(desired())
    plan = make_plan(desired(connector={"client_config": {"read_timeout": 60}}), state)
    from os_rerank.wire import DEPLOY, UNDEPLOY

    plan = type(plan)(plan.version, tuple(  # the update alone: no undeploy before it
        type(a)(**{**a.__dict__, "requests": tuple(r for r in a.requests if r.role not in (DEPLOY, UNDEPLOY))})
        for a in plan.actions))
    cluster, transport, sleeps = cluster_for([("PUT", r"/connectors/c1$", busy), *CREATE_ALL])
    with pytest.raises(OsRerankError):
        apply_plan(plan, cluster, make_config(connector={"client_config": {"read_timeout": 60}}), CREDENTIAL)
    assert writes(transport).count("PUT /_plugins/_ml/connectors/c1") == 1 and not sleeps


def test_model_replace_deletes_the_old_one_first() -> None:
    want = desired()
    state = full(want)
    old = Found("m0", {**state.models[0].body, "connector_id": "c0"})
    plan = make_plan(want, ClusterState(**{**state.__dict__, "models": (old,)}))
    cluster, transport, _ = cluster_for([
        ("POST", r"/models/m0/_undeploy$", {}), ("DELETE", r"/models/m0$", {"result": "deleted"}), *CREATE_ALL])
    result = apply_plan(plan, cluster, make_config(), CREDENTIAL)
    assert writes(transport) == [
        "POST /_plugins/_ml/models/m0/_undeploy", "DELETE /_plugins/_ml/models/m0",
        "POST /_plugins/_ml/models/_register", "POST /_plugins/_ml/models/m1/_deploy",
        "PUT /_search/pipeline/rerank_pipeline_sagemaker"]
    assert json.loads(transport.sent[-1][2] or "")["response_processors"][0]["rerank"]["ml_opensearch"] == \
        {"model_id": "m1"}
    assert result.model_id == "m1"
    assert SETTLED == [("models", {"term": {"name.keyword": "os-rerank cross-encoder"}}, ["m1"], ["m0"])]


def test_bulk_item_errors_fail_the_documents_step() -> None:
    failed = {"errors": True, "items": [{"index": {"_id": "seed-1", "status": 400, "error": {
        "type": "mapper_parsing_exception", "reason": "failed to parse"}}}]}
    routes = [r if "_bulk" not in r[1] else (r[0], r[1], failed) for r in CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    with pytest.raises(ClusterError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    assert "bulk load into my-test-data: 1 document(s) failed; first: seed-1:" in err.value.message
    assert "setup stopped at documents 'my-test-data'" in err.value.message
    assert [kind for kind, *_ in SETTLED] == ["connectors", "model_groups", "models"]  # a failed run settles too


def test_an_interrupted_setup_says_what_finished() -> None:
    def interrupt(method: str, path: str, body: Any) -> Any:
        raise KeyboardInterrupt

    routes = [r if "_bulk" not in r[1] else (r[0], r[1], interrupt) for r in CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    with pytest.raises(os_rerank.errors.OsRerankError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    assert err.value.exit_code == 130
    assert err.value.message.startswith("setup stopped at documents 'my-test-data': interrupted\n")
    assert "index my-test-data created" in err.value.message


def test_an_unexpected_error_still_says_what_finished() -> None:
    def broken(method: str, path: str, body: Any) -> Any:
        raise ValueError("no JSON object could be decoded")

    routes = [r if "_search/pipeline" not in r[1] else (r[0], r[1], broken) for r in CREATE_ALL]
    cluster, _, _ = cluster_for(routes)
    with pytest.raises(os_rerank.errors.OsRerankError) as err:
        apply_plan(make_plan(desired(), empty()), cluster, make_config(), CREDENTIAL)
    lines = err.value.message.splitlines()
    assert lines[0] == ("setup stopped at pipeline 'rerank_pipeline_sagemaker': unexpected ValueError: "
                        "no JSON object could be decoded")
    assert "4 documents loaded into my-test-data" in lines[1]
    assert lines[2] == "not done: pipeline rerank_pipeline_sagemaker"
    assert err.value.fix == "run `os-rerank setup` again: it finds what exists by name and completes the rest"


def test_a_resource_kind_without_a_handler_sends_its_requests_and_passes_its_id_on() -> None:
    from os_rerank.provision.plan import CREATE, Action, Plan
    from os_rerank.wire import Ref, Request

    plan = Plan((2, 19, 0), (
        Action(CREATE, "widget register", "p", "new", requests=(
            Request("POST", "/_plugins/_ml/models/_register", {"name": "e"}, yields="embedding model"),)),
        Action(CREATE, "knn index", "k", "new", requests=(
            Request("PUT", "/k", {"model": Ref("embedding model"), "text": "${embedding model}"}),)),
    ))
    cluster, transport, _ = cluster_for([("POST", r"/models/_register$", {"model_id": "e1", "task_id": "t"}),
                                         ("PUT", r"^/k$", {"acknowledged": True})])
    result = apply_plan(plan, cluster, make_config(), CREDENTIAL)
    assert json.loads(transport.sent[1][2] or "") == {"model": "e1", "text": "${embedding model}"}
    assert [e.line() for e in result.events] == ["+ widget register p: create", "+ knn index k: create"]
