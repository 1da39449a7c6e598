"""make_plan on hand-built states: pure, every action kind, every reason, version-dependent choices."""

from __future__ import annotations

from typing import Any

import pytest

from os_rerank.config import Config
from os_rerank.errors import ClusterError
from os_rerank.mlcommons import PRIVATE_IP, TRUSTED_REGEX, Found, java_regex_quote, regex_admits, url_regex
from os_rerank.provision.plan import (
    CREATE,
    NO_CHANGE,
    REPLACE,
    UPDATE,
    connector_differences,
    desired_state,
    make_plan,
)
from os_rerank.provision.plan_actions import plan_lines
from os_rerank.provision.render import KNOWN_AFTER_APPLY, Version
from os_rerank.provision.state import ClusterState, IndexState
from tests.support.plans import DEFAULTS, URL, desired, empty, full, live_connector

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


def kinds(plan: Any) -> dict[str, str]:
    return {a.resource: a.kind for a in plan.actions}


def test_empty_cluster_creates_everything_in_order() -> None:
    plan = make_plan(desired(), empty())
    assert [(a.resource, a.kind) for a in plan.actions] == [
        ("settings", UPDATE), ("connector", CREATE), ("model group", CREATE), ("model", CREATE),
        ("index", CREATE), ("documents", CREATE), ("pipeline", CREATE)]
    assert plan.action("model").body["connector_id"] == KNOWN_AFTER_APPLY
    assert plan.action("model").shown_id == KNOWN_AFTER_APPLY
    assert plan.action("pipeline").body["response_processors"][0]["rerank"]["ml_opensearch"]["model_id"] == \
        KNOWN_AFTER_APPLY
    assert plan.summary() == "Plan: 6 to create, 1 to update, 0 to replace, 0 unchanged."
    assert plan.action("connector").body["credential"] == {"access_key": "***", "secret_key": "***"}


def test_matching_cluster_is_no_change_with_a_reason_for_each() -> None:
    want = desired()
    plan = make_plan(want, full(want))
    reasons = {a.resource: a.reason for a in plan.actions if a.kind == NO_CHANGE}
    assert set(reasons) == set(kinds(plan))
    assert reasons["connector"] == "connector exists and matches"
    assert reasons["model group"] == "model group exists"
    assert reasons["model"] == "model exists, uses connector c1, and is DEPLOYED"
    assert reasons["index"] == "index exists with the mapping"
    assert reasons["documents"] == "all 4 sample documents present and equal"
    assert reasons["pipeline"] == "pipeline exists and reranks with model m1"
    assert reasons["settings"].startswith(f"trusted endpoint regex {url_regex(URL)} admits {URL}")
    assert plan.summary() == "No changes. All 7 resources match the config."
    assert not plan.changes


def test_settings_merge_keeps_every_existing_entry_and_adds_one_anchored_regex() -> None:
    plan = make_plan(desired(), empty(regexes=DEFAULTS))
    body = plan.action("settings").body
    ours = r"^http://10\.0\.0\.5:8080/endpoints/os\-rerank\-cross\-encoder/invocations$"
    assert body == {"persistent": {TRUSTED_REGEX: [*DEFAULTS, ours], PRIVATE_IP: True}}
    assert regex_admits(ours, URL)
    assert not regex_admits(ours, URL + "x") and not regex_admits(ours, URL.replace("5:", "51:"))
    assert "keeping the 2 existing entries" in plan.action("settings").reason


def test_transient_settings_are_changed_where_they_live() -> None:
    state = ClusterState(**{**empty().__dict__, "settings_scope": "transient"})
    action = make_plan(desired(), state).action("settings")
    assert action is not None and list(action.body) == ["transient"]
    assert "written as transient settings" in action.reason


def test_an_existing_regex_that_admits_the_url_is_enough() -> None:
    state = empty(regexes=(*DEFAULTS, r"^http://10\.0\.0\..*$"))
    action = make_plan(desired(private=False), state).action("settings")
    assert action is not None and action.kind == NO_CHANGE
    assert action.reason == rf"trusted endpoint regex ^http://10\.0\.0\..*$ admits {URL}"


def test_the_default_sagemaker_regex_admits_the_runtime_url() -> None:
    want = desired_state(Config.model_validate({"sagemaker": {"region": "eu-west-1", "endpoint_name": "x"}}),
                         (2, 19, 0), endpoint_private=False)
    action = make_plan(want, empty()).action("settings")
    assert action is not None and action.kind == NO_CHANGE


@pytest.mark.parametrize(("version", "private", "has_setting"), [
    ((2, 14, 0), True, False), ((2, 15, 0), True, True), ((3, 4, 0), True, True), ((2, 19, 0), False, False)])
def test_private_ip_setting_only_from_2_15_and_only_for_private_hosts(
        version: Version, private: bool, has_setting: bool) -> None:
    plan = make_plan(desired(version, private=private), empty(version))
    assert (PRIVATE_IP in plan.action("settings").body["persistent"]) is has_setting
    if private and not has_setting:
        assert "has no plugins.ml_commons.connector.private_ip_enabled" in plan.action("settings").reason


def test_client_config_follows_the_version() -> None:
    assert "client_config" not in desired((2, 12, 0)).connector
    assert desired((2, 13, 0)).connector["client_config"]["read_timeout"] == 30000
    assert desired((2, 14, 0)).connector["client_config"]["read_timeout"] == 30


def test_changed_connector_is_updated_in_place_around_its_deployed_model() -> None:
    old = desired()
    state = full(old)
    new = desired(connector={"client_config": {"read_timeout": 60}})
    plan = make_plan(new, state)
    action = plan.action("connector")
    assert (action.kind, action.id, action.related) == (UPDATE, "c1", ("m1",))
    assert action.reason == ("connector differs: client_config.read_timeout (30 -> 60) "
                             "(undeploy m1, update in place, deploy again)")
    assert kinds(plan)["model"] == NO_CHANGE and kinds(plan)["pipeline"] == NO_CHANGE


def test_changed_contract_names_the_script_fields() -> None:
    state = full(desired())
    action = make_plan(desired(sagemaker={"contract": "tei-rerank"}), state).action("connector")
    assert action.kind == UPDATE
    assert "actions[0].pre_process_function" in action.reason and "actions[0].post_process_function" in action.reason


def test_connector_differences_ignore_server_side_defaults_and_case() -> None:
    want = desired()
    assert connector_differences(want.connector, live_connector(want)) == []
    live = live_connector(want)
    live["parameters"]["extra"] = "kept by putAll"
    assert connector_differences(want.connector, live) == []
    live["actions"][0]["url"] = "http://elsewhere/endpoints/x/invocations"
    assert connector_differences(want.connector, live) == [
        f"actions[0].url (http://elsewhere/endpoints/x/invocations -> {URL[:39]}…)"]


def test_undeployed_model_is_deployed() -> None:
    want = desired()
    state = full(want)
    model = Found("m1", {**state.models[0].body, "model_state": "UNDEPLOYED"})
    state = ClusterState(**{**state.__dict__, "models": (model,)})
    action = make_plan(want, state).action("model")
    assert (action.kind, action.id, action.reason) == (UPDATE, "m1", "model is UNDEPLOYED; deploy it")


def test_model_on_another_connector_is_replaced_and_pipeline_repointed() -> None:
    want = desired()
    state = full(want)
    model = Found("m1", {**state.models[0].body, "connector_id": "c0"})
    plan = make_plan(want, ClusterState(**{**state.__dict__, "models": (model,)}))
    action = plan.action("model")
    assert (action.kind, action.related) == (REPLACE, ("m1",))
    assert action.reason.startswith("model uses connector c0, not c1; register a new model")
    pipeline = plan.action("pipeline")
    assert (pipeline.kind, pipeline.reason) == (UPDATE, "the model is new: point the pipeline at it")


def test_missing_connector_means_a_new_connector_and_a_new_model() -> None:
    want = desired()
    state = full(want)
    plan = make_plan(want, ClusterState(**{**state.__dict__, "connectors": ()}))
    assert kinds(plan)["connector"] == CREATE
    assert plan.action("model").kind == REPLACE
    assert "not the new connector" in plan.action("model").reason


def test_wrong_mapping_replaces_the_index_and_reloads_documents() -> None:
    want = desired()
    state = full(want)
    index = IndexState({"passage_text": {"type": "keyword"}}, 4, state.index.documents)
    plan = make_plan(want, ClusterState(**{**state.__dict__, "index": index}))
    assert plan.action("index").kind == REPLACE
    assert plan.action("index").reason == "mapping differs: passage_text is keyword, want text (delete and recreate)"
    assert plan.action("documents").kind == CREATE


def test_changed_or_missing_documents_are_reloaded_and_extras_left_alone() -> None:
    want = desired()
    state = full(want)
    docs = dict(state.index.documents)
    docs.pop("seed-1")
    docs["seed-2"] = {"passage_text": "edited"}
    docs["mine"] = {"passage_text": "a user's own document"}
    plan = make_plan(want, ClusterState(**{**state.__dict__, "index": IndexState(state.index.properties, 4, docs)}))
    action = plan.action("documents")
    assert action.kind == UPDATE
    assert action.reason == "reload 4 sample documents (1 missing, 1 differ) (and 1 other document(s) left alone)"
    assert action.body.count('{"index": {"_index": "my-test-data"') == 4


def test_changed_pipeline_fields_are_named() -> None:
    want = desired(pipeline={"ignore_failure": True})
    plan = make_plan(want, full(desired()))
    action = plan.action("pipeline")
    assert action.kind == UPDATE
    assert action.reason == "pipeline differs: ignore_failure (False -> True)"


def test_no_model_group_configured_plans_none() -> None:
    want = desired(model={"group": None})
    plan = make_plan(want, empty())
    assert "model group" not in kinds(plan)
    assert "model_group_id" not in plan.action("model").body


@pytest.mark.parametrize("resource", ["connectors", "models", "model_groups"])
def test_two_resources_with_our_name_are_refused_not_guessed(resource: str) -> None:
    want = desired()
    state = full(want)
    two = (*getattr(state, resource), Found("zz", dict(getattr(state, resource)[0].body)))
    with pytest.raises(ClusterError) as err:
        make_plan(want, ClusterState(**{**state.__dict__, resource: two}))
    assert "will not guess which one is its own" in err.value.message
    assert "os-rerank teardown" in (err.value.fix or "")


def test_java_regex_quote_escapes_metacharacters_only() -> None:
    assert java_regex_quote("http://h-1.x:80/a+b(c)$") == r"http://h\-1\.x:80/a\+b\(c\)\$"
    assert regex_admits(url_regex("http://h-1.x:80/a+b(c)$"), "http://h-1.x:80/a+b(c)$")
    assert not regex_admits("[unclosed", "x")


def test_plan_lines_show_ids_and_reasons() -> None:
    lines = plan_lines(make_plan(desired(), empty()))
    assert lines[0] == "OpenSearch 2.19.0"
    assert "  +   create    connector    os-rerank sagemaker cross-encoder  [(known after apply)]" in lines
    assert lines[-1] == "Plan: 6 to create, 1 to update, 0 to replace, 0 unchanged."


def test_plan_imports_without_boto3_or_opensearch_py() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules.update(boto3=None, botocore=None, opensearchpy=None); "
            "import os_rerank.provision.plan, os_rerank.provision.state; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr
