"""Setup, plan, status, verify and teardown through the CLI, once per backend (fake double and real cluster).

Writes are counted from the CLI's own record (`setup --json` reports `writes`), so the counts hold on both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from os_rerank.mlcommons import url_regex
from tests.backends import Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")


def _setup(backend: Backend, config: str, *extra: str) -> dict[str, Any]:
    code, report, err = backend.run_json("setup", "--config", config, *extra)
    assert (code, err) == (0, ""), err
    return report


def _status(backend: Backend, config: str) -> dict[str, list[dict[str, Any]]]:
    code, rows, err = backend.run_json("status", "--config", config)
    assert (code, err) == (0, "")
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["resource"], []).append(row)
    return out


def test_setup_from_empty_then_again_sends_no_writes(backend: Backend) -> None:
    config = str(backend.config())
    first = _setup(backend, config)
    assert first["writes"] > 0
    assert first["verify"]["passed"] is True
    kinds = {a["resource"]: a["kind"] for a in first["plan"]["actions"]}
    # Cluster settings outlive teardown, so on a real cluster an earlier run may already have added our regex.
    assert kinds.pop("settings") in ("update", "no change")
    assert kinds == {"connector": "create", "model group": "create", "model": "create",
                     "index": "create", "documents": "create", "pipeline": "create"}
    steps = [e["message"] for e in first["events"] if e["kind"] != "unchanged"]
    assert f"connector os-rerank scenario connector created (id {first['ids']['connector']})" in steps

    code, out, err = backend.run("setup", "--config", config)
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert "No changes. The cluster already matches the config (0 writes)." in out
    assert "= connector os-rerank scenario connector: connector exists and matches" in err
    assert "verify: ok" in out
    code, again, err = backend.run_json("setup", "--config", config)
    assert (code, again["writes"]) == (0, 0)
    assert again["ids"] == first["ids"]


def test_plan_reads_only_and_says_what_setup_would_do(backend: Backend) -> None:
    config = str(backend.config())
    code, out, err = backend.run("plan", "--config", config)
    assert (code, err) == (0, "")
    assert "  +   create    connector    os-rerank scenario connector  [(known after apply)]" in out
    assert "no connector with this name" in out
    assert out.rstrip().splitlines()[-1].startswith("Plan: 6 to create, ")
    code, plan, err = backend.run_json("plan", "--config", config)
    assert [a["kind"] for a in plan["actions"]].count("create") == 6
    # Nothing was written: the setup that follows still has everything to create.
    assert _setup(backend, config, "--no-verify")["plan"]["summary"].startswith("Plan: 6 to create")


def test_changed_read_timeout_is_updated_in_place(backend: Backend) -> None:
    first = _setup(backend, str(backend.config()))
    changed = str(backend.config("changed.yaml", connector={"client_config": {"read_timeout": 45}}))
    code, out, err = backend.run("plan", "--config", changed)
    assert (code, err) == (0, "")
    connector_id, model_id = first["ids"]["connector"], first["ids"]["model"]
    assert f"  ~   update    connector    os-rerank scenario connector  [{connector_id}]" in out
    assert ("connector differs: client_config.read_timeout (30 -> 45) "
            f"(undeploy {model_id}, update in place, deploy again)") in out
    assert "Plan: 0 to create, 1 to update, 0 to replace, 6 unchanged." in out

    second = _setup(backend, changed)
    steps = [e["message"] for e in second["events"] if e["kind"] not in ("unchanged", "retry")]
    assert steps == [f"model {model_id} undeployed",
                     f"connector os-rerank scenario connector updated in place (id {connector_id})",
                     f"model {model_id} deployed"]
    assert second["ids"] == first["ids"]
    assert second["verify"]["passed"] is True
    status = _status(backend, changed)
    assert [r["id"] for r in status["connector"]] == [connector_id]
    assert [r["id"] for r in status["model"]] == [model_id]
    assert _setup(backend, changed)["writes"] == 0


def test_plan_after_a_contract_change_names_the_changed_fields(backend: Backend) -> None:
    _setup(backend, str(backend.config()), "--no-verify")
    other = str(backend.config("pairs.yaml", sagemaker={"contract": "pairs-scores"}))
    code, plan, err = backend.run_json("plan", "--config", other)
    assert (code, err) == (0, "")
    connector = next(a for a in plan["actions"] if a["resource"] == "connector")
    assert connector["kind"] == "update"
    assert "actions[0].pre_process_function" in connector["reason"]
    assert "actions[0].post_process_function" in connector["reason"]


def test_status_shows_every_resource(backend: Backend) -> None:
    config = str(backend.config())
    code, out, err = backend.run("status", "--config", config)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].split() == ["resource", "name", "id", "state"]
    assert "plugins.ml_commons.trusted_connector_endpoints_regex" in out
    assert "connector    os-rerank scenario connector" in out and "missing" in out
    ids = _setup(backend, config)["ids"]
    status = _status(backend, config)
    assert status["connector"] == [{"resource": "connector", "name": "os-rerank scenario connector",
                                    "id": ids["connector"], "state": "exists"}]
    assert status["model"][0]["state"] == f"DEPLOYED (connector {ids['connector']})"
    assert status["index"][0]["state"] == "4 documents"
    assert status["pipeline"][0]["state"] == f"reranks with model {ids['model']}"
    assert status["setting"][0]["state"].startswith("admits the connector URL")


def test_verify_passes_and_reports_json(backend: Backend) -> None:
    config = str(backend.config())
    _setup(backend, config, "--no-verify")
    code, report, err = backend.run_json("verify", "--config", config)
    assert (code, err) == (0, "")
    assert report["passed"] is True
    assert report["documents"] == len(report["opensearch_scores"]) == len(report["endpoint_scores"]) == 12
    assert report["max_difference"] <= report["tolerance"] == 0.0001
    assert "Washington, D.C." in report["top_hit"]
    code, out, err = backend.run("verify", "--config", config)
    assert (code, err, out.splitlines()[-1]) == (0, "", "verify: ok")


def test_verify_fails_with_exit_6_when_the_endpoint_speaks_another_contract(backend: Backend) -> None:
    wrong = str(backend.config(sagemaker={"contract": "pairs-scores"}))
    code, out, err = backend.run("setup", "--config", wrong, "--no-verify")
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    code, out, err = backend.run("verify", "--config", wrong)
    assert code == 6
    assert "verify: FAILED" in out
    assert err.startswith("os-rerank: error: verification failed for model ")
    assert "os-rerank: error:   predict through OpenSearch failed: " in err
    assert "os-rerank: error:   calling the endpoint directly failed: " in err
    assert "os-rerank: error: fix: check that sagemaker.contract is the contract the endpoint speaks" in err
    code, report, err = backend.run_json("verify", "--config", wrong)
    assert code == 6 and report["passed"] is False and len(report["differences"]) >= 2


def test_teardown_removes_everything_and_twice_is_fine(backend: Backend) -> None:
    config = str(backend.config())
    ids = _setup(backend, config, "--no-verify")["ids"]
    code, out, err = backend.run("teardown", "--config", config)
    assert (code, out) == (0, "Teardown complete.\n")
    entry = url_regex(backend.invocation_url)
    assert err.splitlines() == [  # each step as it happens: progress, on stderr
        "- pipeline os_rerank_scenario deleted",
        "- index os-rerank-scenario deleted",
        "= index os-rerank-scenario-eval already gone",
        f"~ model os-rerank scenario model (id {ids['model']}) undeployed: was DEPLOYED",
        f"- model os-rerank scenario model (id {ids['model']}) deleted",
        f"- connector os-rerank scenario connector (id {ids['connector']}) deleted",
        f"- model group os-rerank-scenario (id {ids['model_group']}) deleted",
        f"- setting plugins.ml_commons.trusted_connector_endpoints_regex deleted: entry {entry}",
    ]
    code, report, err = backend.run_json("teardown", "--config", config)
    assert (code, err) == (0, "")
    assert {s["outcome"] for s in report["steps"]} == {"already gone"}
    states = {r["resource"]: r["state"] for rows in _status(backend, config).values() for r in rows}
    for resource in ("connector", "model group", "model", "index", "pipeline"):
        assert states[resource] == "missing"


def test_teardown_keep_index_then_setup_reuses_it(backend: Backend) -> None:
    config = str(backend.config())
    _setup(backend, config, "--no-verify")
    code, out, err = backend.run("teardown", "--config", config, "--keep-index")
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert "= index os-rerank-scenario kept: --keep-index" in err
    status = _status(backend, config)
    assert status["index"][0]["state"] == "4 documents"
    assert status["model"][0]["state"] == "missing"
    again = _setup(backend, config)
    kinds = {a["resource"]: a["kind"] for a in again["plan"]["actions"]}
    assert kinds["index"] == kinds["documents"] == "no change"
    assert kinds["connector"] == kinds["model"] == kinds["pipeline"] == "create"


def test_no_secret_is_ever_printed(backend: Backend) -> None:
    config = str(backend.config())
    outputs = []
    for argv in (["plan"], ["setup"], ["status"], ["verify"], ["plan"], ["teardown"]):
        for extra in ([], ["--json"]):
            code, out, err = backend.run(*argv, "--config", config, *extra)
            assert code == 0, err
            outputs.append(out + err)
    wrong = str(backend.config("wrong.yaml", sagemaker={"contract": "tei-rerank"}))
    code, out, err = backend.run("setup", "--config", wrong)
    assert code == 6
    outputs.append(out + err)
    assert len(backend.secrets) >= 2
    for text in outputs:
        for secret in backend.secrets:
            assert secret not in text


def test_back_to_back_commands_see_each_others_writes(backend: Backend) -> None:
    """ML Commons' searches lag writes by up to a second on a real node (and on the double): no command may decide
    on a stale search, and each waits until search shows its own writes, so commands run back to back agree."""
    config = str(backend.config())
    first = _setup(backend, config, "--no-verify")
    status = _status(backend, config)
    assert status["model"][0]["state"] == f"DEPLOYED (connector {first['ids']['connector']})"
    assert _setup(backend, config, "--no-verify")["writes"] == 0
    code, report, err = backend.run_json("teardown", "--config", config)
    assert (code, err, report["notes"]) == (0, "", [])
    assert [s["outcome"] for s in report["steps"]] == (["deleted"] * 2 + ["already gone", "undeployed"]
                                                       + ["deleted"] * 4)
    states = {r["resource"]: r["state"] for rows in _status(backend, config).values() for r in rows}
    assert [states[r] for r in ("connector", "model group", "model", "index", "pipeline")] == ["missing"] * 5
    again = _setup(backend, config, "--no-verify")
    assert [a["kind"] for a in again["plan"]["actions"] if a["resource"] != "settings"] == ["create"] * 6
    assert again["ids"] != first["ids"]


def test_two_setups_at_once_make_one_of_each(backend: Backend) -> None:
    """Two processes set up the same config at the same moment: one makes everything, the other waits for its lock
    (os_rerank/provision/lock.py) and then finds nothing to do. Without the lock each made its own connector
    and model."""
    import json
    import os
    import subprocess
    import sys

    config = str(backend.config())
    env = {**os.environ, **backend.environ}
    argv = [sys.executable, "-m", "os_rerank.cli", "setup", "--config", config, "--no-verify", "--json"]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in results]
    writes = sorted(json.loads(out)["writes"] for out, _ in results)
    assert writes[0] == 0 and writes[1] >= 7
    status = _status(backend, config)
    assert [len(status[kind]) for kind in ("connector", "model group", "model")] == [1, 1, 1]
    assert all(row["state"] != "missing" for kind in ("connector", "model") for row in status[kind])
