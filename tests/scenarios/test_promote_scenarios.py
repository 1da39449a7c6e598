"""promote / rollback through the CLI, once per backend: the index's default search pipeline is the rerank pipeline
after promote (a search that names no pipeline is reranked), and rollback restores exactly the default before,
including one the user had set; both are plans first and idempotent; teardown leaves no dangling default."""

from __future__ import annotations

import time
from typing import Any

import pytest

from os_rerank.cluster import Cluster, connect
from os_rerank.config import load_config
from os_rerank.errors import OsRerankError
from tests.backends import Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

INDEX = "os-rerank-scenario"
PIPELINE = "os_rerank_scenario"
QUERY = "What is the capital of the United States?"


def _cluster(backend: Backend, config: str) -> Cluster:
    return connect(load_config(config, backend.environ))


def _search(cluster: Cluster, pipeline: str | None = None) -> dict[str, Any]:
    """The application's search: a match plus the rerank context, naming a pipeline only when `pipeline` is set."""
    body = {"query": {"match": {"passage_text": QUERY}}, "size": 10,
            "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    params = {"search_pipeline": pipeline} if pipeline else None
    return dict(cluster.request("POST", f"/{INDEX}/_search", body=body, params=params))


def _ranked(response: dict[str, Any]) -> list[tuple[str, float]]:
    return [(h["_id"], round(float(h["_score"]), 5)) for h in response["hits"]["hits"]]


def _default(cluster: Cluster) -> str | None:
    settings = cluster.request("GET", f"/{INDEX}/_settings", params={"flat_settings": "true"})
    return settings[INDEX]["settings"].get("index.search.default_pipeline")


def _config(backend: Backend) -> str:
    """ignore_failure on: promoted, a search without the rerank context (and _count) is served, not failed."""
    return str(backend.config(pipeline={"ignore_failure": True}))


def _setup(backend: Backend, config: str) -> None:
    code, out, err = backend.run("setup", "--config", config)
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr


def _status_row(backend: Backend, config: str) -> str:
    code, rows, err = backend.run_json("status", "--config", config)
    assert (code, err) == (0, "")
    return next(r["state"] for r in rows if r["resource"] == "default pipeline")


def test_promote_reranks_searches_that_name_no_pipeline_and_rollback_removes_the_default(backend: Backend) -> None:
    config = _config(backend)
    _setup(backend, config)
    cluster = _cluster(backend, config)
    plain, reranked = _ranked(_search(cluster, "_none")), _ranked(_search(cluster, PIPELINE))
    assert plain != reranked and _ranked(_search(cluster)) == plain
    assert _status_row(backend, config) == "not promoted (default search pipeline: none (unset))"

    code, out, err = backend.run("promote", "--config", config, "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (f"promote: {INDEX}: default search pipeline none (unset) -> {PIPELINE} "
                                   "(dry run: nothing sent)")
    assert f"PUT /{INDEX}/_settings\n{{\n  \"index.search.default_pipeline\": \"{PIPELINE}\"\n}}" in out
    assert f"PUT /{INDEX}/_mapping" in out
    assert _default(cluster) is None  # the dry run sent nothing

    code, result, err = backend.run_json("promote", "--config", config)
    assert (code, err) == (0, "")
    assert (result["writes_sent"], result["verified"], result["before"], result["after"]) == (2, True, None,
                                                                                             PIPELINE)
    assert _default(cluster) == PIPELINE
    time.sleep(1.1)  # a node's searches lag writes by up to a second
    assert _ranked(_search(cluster)) == reranked  # no pipeline named: the default reranks it
    assert _status_row(backend, config) == f"promoted: {PIPELINE} is the default (rollback restores none (unset))"

    code, out, err = backend.run("promote", "--config", config)
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"No changes. {PIPELINE} is already the default of {INDEX} (rollback restores "
                                "none (unset))."]

    code, result, err = backend.run_json("rollback", "--config", config)
    assert (code, err, result["writes_sent"]) == (0, "", 2)
    assert result["writes"][0]["body"] == {"index.search.default_pipeline": None}
    assert _default(cluster) is None
    assert _ranked(_search(cluster)) == plain
    code, result, err = backend.run_json("rollback", "--config", config)
    assert (code, result["writes_sent"], result["reason"]) == (0, 0, f"{INDEX} is not promoted (default search "
                                                                   "pipeline: none (unset))")
    mapping = cluster.request("GET", f"/{INDEX}/_mapping")[INDEX]["mappings"]
    assert "os_rerank_promotion" not in (mapping.get("_meta") or {})


def test_rollback_restores_a_default_the_user_had_set_and_keeps_their_meta(backend: Backend) -> None:
    config = _config(backend)
    _setup(backend, config)
    cluster = _cluster(backend, config)
    cluster.request("PUT", "/_search/pipeline/os_rerank_users_own", body={
        "description": "the user's", "response_processors": [{"rerank": {"by_field": {"target_field": "rank"}}}]})
    try:
        cluster.request("PUT", f"/{INDEX}/_settings", body={"index.search.default_pipeline": "os_rerank_users_own"})
        cluster.request("PUT", f"/{INDEX}/_mapping", body={"_meta": {"team": "search"}})
        code, result, err = backend.run_json("promote", "--config", config)
        assert (code, err, result["before"]) == (0, "", "os_rerank_users_own")
        mapping = cluster.request("GET", f"/{INDEX}/_mapping")[INDEX]["mappings"]
        assert mapping["_meta"]["team"] == "search"
        assert mapping["_meta"]["os_rerank_promotion"]["previous"] == "os_rerank_users_own"

        code, out, err = backend.run("rollback", "--config", config, "--dry-run")
        assert (code, err) == (0, "")
        assert '"index.search.default_pipeline": "os_rerank_users_own"' in out
        assert _default(cluster) == PIPELINE
        code, result, err = backend.run_json("rollback", "--config", config)
        assert (code, err, result["after"]) == (0, "", "os_rerank_users_own")
        assert _default(cluster) == "os_rerank_users_own"
        assert cluster.request("GET", f"/{INDEX}/_mapping")[INDEX]["mappings"]["_meta"] == {"team": "search"}
    finally:
        cluster.request("PUT", f"/{INDEX}/_settings", body={"index.search.default_pipeline": None})
        cluster.request("DELETE", "/_search/pipeline/os_rerank_users_own", missing_ok=True)


def test_promote_refuses_when_the_endpoint_fails_right_then(backend: Backend) -> None:
    config = _config(backend)
    _setup(backend, config)
    cluster = _cluster(backend, config)
    backend.endpoint.fail_next(400, count=50)
    try:
        code, out, err = backend.run("promote", "--config", config)
    finally:
        backend.endpoint._faults.clear()
    assert code == 6
    assert err.startswith("os-rerank: error: promote refused: the rerank pipeline's model failed its predict "
                          f"roundtrip just now; {INDEX} keeps its default (none (unset))")
    assert _default(cluster) is None


def test_teardown_keep_index_leaves_no_dangling_default(backend: Backend) -> None:
    config = _config(backend)
    _setup(backend, config)
    cluster = _cluster(backend, config)
    code, out, err = backend.run("promote", "--config", config)
    assert code == 0, err
    assert err.splitlines()[0] == "verify: predict roundtrip and reranked search ok"  # progress, on stderr
    code, out, err = backend.run("teardown", "--config", config, "--keep-index")
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert err.splitlines()[0] == (f"~ default pipeline {INDEX} restored: default search pipeline of {INDEX} "
                                   "restored to none (unset) (as recorded by promote)")
    assert err.splitlines()[1] == f"- pipeline {PIPELINE} deleted"
    assert _default(cluster) is None
    time.sleep(1.1)
    assert _search(cluster)["hits"]["total"]["value"] > 0  # the kept index still answers searches


def test_promote_refuses_a_pipeline_that_would_fail_searches_without_a_rerank_context(backend: Backend) -> None:
    config = str(backend.config())  # ignore_failure off
    _setup(backend, config)
    cluster = _cluster(backend, config)
    code, out, err = backend.run("promote", "--config", config)
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (
        f"os-rerank: error: pipeline {PIPELINE} has ignore_failure off: promoted, every search of {INDEX} that does "
        "not carry ext.rerank.query_context, and every _count, would fail (seen on 2.19.1: the rerank processor "
        "throws a NullPointerException without a query context)")
    assert _default(cluster) is None
    code, result, err = backend.run_json("promote", "--config", config, "--allow-failing-searches")
    assert (code, result["writes_sent"]) == (0, 2)
    time.sleep(1.1)
    failed = cluster.request  # what an application without the rerank context meets, and what os-rerank avoids
    try:
        failed("POST", f"/{INDEX}/_count", body={"query": {"match_all": {}}})
        raise AssertionError("_count of a promoted index without ignore_failure should fail")
    except OsRerankError as exc:
        assert "RerankSearchExtBuilder" in exc.message
    code, rows, err = backend.run_json("status", "--config", config)  # os-rerank's own reads name pipeline _none
    assert (code, err) == (0, "")
    assert _ranked(_search(cluster)) == _ranked(_search(cluster, PIPELINE))
    code, result, err = backend.run_json("rollback", "--config", config)
    assert (code, result["writes_sent"]) == (0, 2)


def test_teardown_removes_a_default_set_by_hand_that_names_our_pipeline(backend: Backend) -> None:
    config = _config(backend)
    _setup(backend, config)
    cluster = _cluster(backend, config)
    cluster.request("PUT", f"/{INDEX}/_settings", body={"index.search.default_pipeline": PIPELINE})
    assert _status_row(backend, config) == (f"{PIPELINE} is the default, set outside os-rerank (nothing recorded to "
                                            "roll back to)")
    code, out, err = backend.run("rollback", "--config", config)
    assert code == 4 and "nothing records the default it replaced" in err
    code, out, err = backend.run("teardown", "--config", config, "--keep-index")
    assert code == 0 and "os-rerank:" not in err, err  # progress only, on stderr
    assert err.splitlines()[0] == (f"~ default pipeline {INDEX} restored: default search pipeline of {INDEX} removed "
                                   "(set outside os-rerank; nothing recorded to restore)")
    assert _default(cluster) is None
