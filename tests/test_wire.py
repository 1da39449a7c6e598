"""Planned requests (os_rerank/wire.py): placeholders are objects replaced by type, never text in user content."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from os_rerank.provision.plan import desired_state, make_plan
from os_rerank.provision.render import dumps, model_body, pipeline_body
from os_rerank.wire import KNOWN_AFTER_APPLY, Ref, Request, Secret, fill, placeholders
from tests.support.plans import empty, full, make_config

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

TRAPS = ["${connector_id}", "${model_id}", KNOWN_AFTER_APPLY, "***", "${parameters.body}", '"\\', "한국어 हिन्दी"]


def test_a_ref_shows_as_known_after_apply_and_survives_copies() -> None:
    ref = Ref("connector")
    assert ref == KNOWN_AFTER_APPLY and json.dumps(ref) == json.dumps(KNOWN_AFTER_APPLY)
    for twin in (copy.deepcopy(ref), pickle.loads(pickle.dumps(ref))):
        assert isinstance(twin, Ref) and twin.resource == "connector"
    secret = Secret("credential", {"access_key": "***"})
    assert json.loads(json.dumps(secret)) == {"access_key": "***"}
    assert copy.deepcopy(secret).name == "credential"


@pytest.mark.parametrize("text", TRAPS)
def test_user_text_that_looks_like_a_placeholder_stays_text(text: str) -> None:
    body = {"description": text, "id": Ref("model"), "list": [text, Ref("connector")],
            "credential": Secret("credential", {"k": "***"})}
    filled = fill(body, {"model": "m1", "connector": "c1", "credential": {"k": "real"}})
    assert filled == {"description": text, "id": "m1", "list": [text, "c1"], "credential": {"k": "real"}}
    assert placeholders(filled) == []


def test_render_hands_placeholders_back_as_the_same_objects() -> None:
    config = make_config(model={"description": "${connector_id} " + KNOWN_AFTER_APPLY},
                         pipeline={"description": "${model_id}"})
    body = model_body(config, connector_id=Ref("connector"), model_group_id=Ref("model group"))
    assert isinstance(body["connector_id"], Ref) and body["connector_id"].resource == "connector"
    assert isinstance(body["model_group_id"], Ref) and body["model_group_id"].resource == "model group"
    assert type(body["description"]) is str and body["description"] == "${connector_id} " + KNOWN_AFTER_APPLY
    pipeline = pipeline_body(config, model_id=Ref("model"))
    rerank = pipeline["response_processors"][0]["rerank"]["ml_opensearch"]
    assert isinstance(rerank["model_id"], Ref) and pipeline["description"] == "${model_id}"


def test_a_request_filled_is_what_is_sent_and_a_missing_value_is_a_bug() -> None:
    request = Request("POST", ("/_plugins/_ml/models/", Ref("model"), "/_deploy"))
    assert request.shown_path == f"/_plugins/_ml/models/{KNOWN_AFTER_APPLY}/_deploy"
    assert request.filled({"model": "m1"}).path == "/_plugins/_ml/models/m1/_deploy"
    with pytest.raises(AssertionError, match="no value for"):
        request.filled({})
    text = Request("PUT", "/x", {"a": Ref("model"), "b": "ü"}).filled({"model": "m1"}).text()
    assert text == dumps({"a": "m1", "b": "ü"})


def test_every_change_of_a_plan_carries_its_requests_and_no_secret() -> None:
    config = make_config(model={"description": "${connector_id}"})
    want = desired_state(config, (2, 19, 0), endpoint_private=True)
    plan = make_plan(want, empty())
    assert all(a.requests for a in plan.changes)
    assert [(r.method, r.shown_path) for a in plan.actions for r in a.requests] == [
        ("PUT", "/_cluster/settings"), ("POST", "/_plugins/_ml/connectors/_create"),
        ("POST", "/_plugins/_ml/model_groups/_register"), ("POST", "/_plugins/_ml/models/_register"),
        ("POST", f"/_plugins/_ml/models/{KNOWN_AFTER_APPLY}/_deploy"), ("PUT", "/my-test-data"),
        ("POST", "/_bulk?refresh=true"), ("PUT", "/_search/pipeline/rerank_pipeline_sagemaker")]
    model = plan.action("model")
    assert model is not None
    # The model body is the template's (description included), not one written by hand.
    assert model.requests[0].body == model_body(config, connector_id=KNOWN_AFTER_APPLY,
                                                model_group_id=KNOWN_AFTER_APPLY)
    assert model.requests[0].body["description"] == "${connector_id}"
    values = {"connector": "c1", "model group": "g1", "model": "m1", "credential": {"access_key": "AKIDSECRET"}}
    sent = [r.filled(values).text() or "" for a in plan.actions for r in a.requests]
    assert '"access_key": "AKIDSECRET"' in sent[1] and "AKIDSECRET" not in json.dumps(plan.to_dict())
    assert json.loads(sent[3])["description"] == "${connector_id}"
    # Nothing to do: no requests at all.
    assert [r for a in make_plan(want, full(want)).actions for r in a.requests] == []


def test_render_prints_the_plan_of_an_empty_cluster_byte_for_byte() -> None:
    from os_rerank.provision.render import render_requests

    config = make_config(model={"description": "${connector_id} \"q\" 한국어"})
    plan = make_plan(desired_state(config, (2, 19, 0), endpoint_private=True), empty())
    planned = [(r.method, r.shown_path, r.text(), r.content_type) for a in plan.actions for r in a.requests
               if a.resource != "settings" and r.body is not None]
    rendered = [(r.method, r.path, r.body, r.content_type) for r in render_requests(config, version=(2, 19, 0))]
    assert planned == rendered
