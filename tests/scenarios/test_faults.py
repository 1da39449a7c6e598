"""Fault injection, against the double only (a real cluster cannot be told to fail): FAKE ONLY, every test here
uses `fake_backend`. Cluster faults come from `OpenSearchDouble.inject/drop`, endpoint faults from
`EndpointServer.fail_next`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from os_rerank.provision.render import render_requests
from tests.backends import Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")


def _setup(backend: Backend, config: str, *extra: str) -> dict[str, Any]:
    code, report, err = backend.run_json("setup", "--config", config, *extra)
    assert (code, err) == (0, ""), err
    return report


def _names(backend: Backend) -> dict[str, int]:
    state = backend.double.state
    return {"connectors": len(state.connectors), "models": len(state.models)}


def test_what_render_prints_is_byte_for_byte_what_setup_sends(fake_backend: Backend) -> None:
    from os_rerank.config import load_config

    path = fake_backend.config()
    report = _setup(fake_backend, str(path), "--no-verify")
    ids = report["ids"]
    config = load_config(path, {})
    keys = {"access_key": os.environ["AWS_ACCESS_KEY_ID"], "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"]}
    rendered = render_requests(config, version=(2, 19, 0), credential=keys,
                               connector_id=ids["connector"], model_group_id=ids["model_group"],
                               model_id=ids["model"])
    sent = {(r.method, r.path + (f"?{r.query}" if r.query else "")): r.body.decode("utf-8")
            for r in fake_backend.double.requests if r.is_write}
    assert len(rendered) == 6
    for item in rendered:
        assert sent[(item.method, item.path)] == item.body, item.what


def test_cluster_429_and_503_on_writes_are_retried(fake_backend: Backend) -> None:
    double = fake_backend.double
    double.inject("PUT", r"^/_cluster/settings$", status=429, times=1)
    double.inject("POST", r"/connectors/_create$", status=503, times=2)
    report = _setup(fake_backend, str(fake_backend.config()))
    assert report["verify"]["passed"] is True
    statuses = [r.status for r in double.requests if r.path.endswith("/connectors/_create")]
    assert statuses == [503, 503, 200]
    assert _names(fake_backend) == {"connectors": 1, "models": 1}


def test_master_key_not_ready_is_retried(fake_backend: Backend) -> None:
    fake_backend.double.ml.master_key_failures = 2
    code, out, err = fake_backend.run("setup", "--config", str(fake_backend.config()), "--no-verify")
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert err.count("! ML Commons' encryption master key is not ready yet; retrying in ") == 2
    assert _names(fake_backend) == {"connectors": 1, "models": 1}


def test_connection_drop_mid_setup_then_rerun_completes_without_duplicates(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    # The register happens but its answer is lost: the worst case for duplicates.
    fake_backend.double.drop("POST", r"/_plugins/_ml/models/_register$", applied=True)
    code, out, err = fake_backend.run("setup", "--config", config)
    assert code == 4
    lines = [line for line in err.splitlines() if line.startswith("os-rerank: ")]  # after the progress lines
    assert lines[0] == "os-rerank: error: setup stopped at model 'os-rerank scenario model': POST " \
                       "/_plugins/_ml/models/_register: no answer from " + fake_backend.url + \
                       lines[0].split(fake_backend.url, 1)[1]
    assert lines[1].startswith("os-rerank: error: finished before it stopped: cluster setting ")
    assert "connector os-rerank scenario connector created (id " in lines[1]
    assert "model group os-rerank-scenario created (id " in lines[1]
    assert lines[2] == ("os-rerank: error: not done: model os-rerank scenario model; index os-rerank-scenario; "
                        "documents os-rerank-scenario; pipeline os_rerank_scenario")
    assert lines[3].endswith("then run `os-rerank setup` again: it finds what exists by name and completes the rest")

    report = _setup(fake_backend, config)
    kinds = {a["resource"]: a["kind"] for a in report["plan"]["actions"]}
    assert kinds == {"settings": "no change", "connector": "no change", "model group": "no change",
                     "model": "update", "index": "create", "documents": "create", "pipeline": "create"}
    assert report["verify"]["passed"] is True
    assert _names(fake_backend) == {"connectors": 1, "models": 1}
    assert _setup(fake_backend, config)["writes"] == 0


def test_endpoint_503_during_verify_is_retried_by_the_cluster_layer(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    _setup(fake_backend, config, "--no-verify")
    fake_backend.endpoint.fail_next(503, count=1, error_type="ServiceUnavailable")
    code, report, err = fake_backend.run_json("verify", "--config", config)
    assert (code, err) == (0, "")
    assert report["passed"] is True
    predicts = [r.status for r in fake_backend.double.requests if "/_predict/" in r.path]
    assert predicts == [503, 200]


def test_endpoint_500_once_during_verify_is_retried_by_verify(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    _setup(fake_backend, config, "--no-verify")
    fake_backend.endpoint.fail_next(500, count=1)
    code, report, err = fake_backend.run_json("verify", "--config", config)
    assert (code, err) == (0, "")
    assert (report["passed"], report["retries"]) == (True, 1)


def test_endpoint_failing_for_good_fails_verify_with_the_reason(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    _setup(fake_backend, config, "--no-verify")
    fake_backend.endpoint.fail_next(500, count=50)
    code, out, err = fake_backend.run("verify", "--config", config)
    assert code == 6
    assert err.startswith("os-rerank: error: verification failed for model ")
    assert "os-rerank: error:   predict through OpenSearch failed: POST /_plugins/_ml/_predict/text_similarity/" in err
    assert "os-rerank: error:   calling the endpoint directly failed: " in err


def test_endpoint_throttling_during_verify_is_retried_by_ml_commons(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    _setup(fake_backend, config, "--no-verify")
    fake_backend.endpoint.fail_next(400, count=1, error_type="ThrottlingException")
    code, report, err = fake_backend.run_json("verify", "--config", config)
    assert (code, err) == (0, "")
    assert (report["passed"], report["retries"]) == (True, 0)
    # The connector's client_config (max_retry_times 3, 2.15+) makes ML Commons retry a throttled call itself.
    statuses = [c["status"] for c in fake_backend.double.remote_calls]
    assert statuses[-3:-1] == [400, 200]


def test_teardown_continues_past_a_failure_reports_it_and_a_rerun_finishes(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    ids = _setup(fake_backend, config, "--no-verify")["ids"]
    fake_backend.double.inject("DELETE", r"/_plugins/_ml/connectors/", status=500, times=1)
    code, out, err = fake_backend.run("teardown", "--config", config)
    assert code == 4
    assert f"! connector os-rerank scenario connector (id {ids['connector']}) failed: DELETE " in err
    assert f"- model group os-rerank-scenario (id {ids['model_group']}) deleted" in err
    steps = err
    errors = [line for line in err.splitlines() if line.startswith("os-rerank: ")]
    assert errors[0] == f"os-rerank: error: teardown: 1 step(s) failed: connector {ids['connector']}"
    code, report, err = fake_backend.run_json("teardown", "--config", config)
    assert (code, err) == (0, "")
    assert "= setting plugins.ml_commons.trusted_connector_endpoints_regex kept: entry " in steps  # still in use
    assert [(s["resource"], s["outcome"]) for s in report["steps"]] == [
        ("pipeline", "already gone"), ("index", "already gone"), ("index", "already gone"),
        ("model", "already gone"), ("connector", "deleted"), ("model group", "already gone"),
        ("setting", "deleted")]
    assert _names(fake_backend) == {"connectors": 0, "models": 0}


def test_two_connectors_with_our_name_are_reported_and_teardown_clears_both(fake_backend: Backend) -> None:
    import copy

    config = str(fake_backend.config())
    ids = _setup(fake_backend, config, "--no-verify")["ids"]
    state = fake_backend.double.state
    state.connectors["duplicate-id"] = copy.deepcopy(state.connectors[ids["connector"]])  # made by someone else
    fake_backend.double.settle_searches()  # ... a while ago
    code, out, err = fake_backend.run("plan", "--config", config)
    assert (code, out) == (4, "")
    assert err.splitlines() == [
        "os-rerank: error: 2 connectors are named 'os-rerank scenario connector' "
        f"({', '.join(sorted([ids['connector'], 'duplicate-id']))}); os-rerank will not guess which one is its own",
        "os-rerank: error: fix: delete all but one (or run `os-rerank teardown`, which removes every connector with "
        "this name), then run setup again",
    ]
    code, out, err = fake_backend.run("teardown", "--config", config)
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert "- connector os-rerank scenario connector (id duplicate-id) deleted" in err
    assert _names(fake_backend) == {"connectors": 0, "models": 0}
    assert _setup(fake_backend, config)["verify"]["passed"] is True


def test_temporary_credentials_are_noted_and_the_token_never_printed(
        fake_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "scenario-session-token-Qp3Vx8"
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    config = str(fake_backend.config())
    code, out, err = fake_backend.run("setup", "--config", config)
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("os-rerank: ")] == [
        "os-rerank: warning: the connector's AWS credentials are temporary (they carry a session token): the "
        "connector stops reaching SageMaker when they expire (their expiry is not known); run `os-rerank "
        "rotate-credentials` before then, or give it long-lived IAM user keys (or connector.role_arn on Amazon "
        "OpenSearch Service)"
    ]
    assert token in fake_backend.double.requests[[r.path for r in fake_backend.double.requests].index(
        "/_plugins/_ml/connectors/_create")].body.decode()
    code, report, err = fake_backend.run_json("setup", "--config", config)
    for text in (out, json.dumps(report), err):
        assert token not in text and os.environ["AWS_SECRET_ACCESS_KEY"] not in text


def test_a_teardown_dry_run_that_cannot_read_says_so_and_sends_nothing(fake_backend: Backend) -> None:
    config = str(fake_backend.config())
    _setup(fake_backend, config, "--no-verify")
    fake_backend.double.inject("POST", r"/_plugins/_ml/models/_search", status=500, times=1)
    before = len(fake_backend.double.writes())
    code, out, err = fake_backend.run("teardown", "--config", config, "--dry-run")
    assert code == 4
    assert "! model os-rerank scenario model failed: cannot list: POST /_plugins/_ml/models/_search: 500" in out
    assert "- connector os-rerank scenario connector (id " in out and "Teardown plan" not in out
    assert err.splitlines()[0] == ("os-rerank: error: teardown --dry-run: 1 step(s) could not be planned: "
                                   "model os-rerank scenario model")
    assert len(fake_backend.double.writes()) == before
