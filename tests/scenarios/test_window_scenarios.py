"""Windowed reranking in the pipeline (pipeline.oversample: the oversample and truncate_hits processors).

On every backend: the nodes `os-rerank local` builds (and the double, which follows them) lack the module that has
those processors, so plan and setup refuse the config before writing anything. On the double with the module (a
full distribution): the pipeline reranks F times the size asked for and returns the size asked for.
"""

from __future__ import annotations

import json
import re

import pytest

from os_rerank.cluster import connect
from os_rerank.config import load_config
from tests.backends import Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

QUERY = "What is the capital of the United States?"


def test_oversample_is_refused_before_any_write_where_the_module_is_absent(backend: Backend) -> None:
    config = str(backend.config(pipeline={"oversample": 4}))
    for command in ("plan", "setup"):
        code, out, err = backend.run(command, "--config", config)
        assert (code, out) == (4, "")
        first = err.splitlines()[0]
        assert re.fullmatch(r"os-rerank: error: pipeline.oversample \(4\) needs the search processors oversample and "
                            r"truncate_hits \(OpenSearch module search-pipeline-common\): \S+ lacks oversample, "
                            r"truncate_hits", first), first
        assert err.splitlines()[1].startswith("os-rerank: error: fix: remove pipeline.oversample from config.yaml")
    code, rows, err = backend.run_json("status", "--config", config)
    assert {r["resource"]: r["state"] for r in rows}["connector"] == "missing"  # nothing was written


def test_oversample_reranks_k_and_returns_n_in_the_pipeline(fake_backend: Backend) -> None:
    fake_backend.double.search.common_module = True  # a full distribution
    config = str(fake_backend.config(pipeline={"oversample": 2.5}))
    code, out, err = fake_backend.run("setup", "--config", config)
    assert code == 0, err
    code, report, err = fake_backend.run_json("setup", "--config", config)
    assert (code, report["writes"]) == (0, 0)  # the live pipeline (two more processors) reads back as sent
    cluster = connect(load_config(config, fake_backend.environ))
    pipeline = cluster.request("GET", "/_search/pipeline/os_rerank_scenario")["os_rerank_scenario"]
    assert pipeline["request_processors"] == [{"oversample": {"sample_factor": 2.5}}]
    assert [next(iter(p)) for p in pipeline["response_processors"]] == ["rerank", "truncate_hits"]

    fake_backend.endpoint.clear_received()
    body = {"query": {"match_all": {}}, "size": 1, "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    result = cluster.request("POST", "/os-rerank-scenario/_search", body=body,
                             params={"search_pipeline": "os_rerank_scenario"})
    sent = json.loads(fake_backend.endpoint.received[-1].body)
    assert len(sent["inputs"]) == 3  # ceil(1 × 2.5) hits reranked
    assert len(result["hits"]["hits"]) == 1  # the size asked for returned
    assert "Washington, D.C." in result["hits"]["hits"][0]["_source"]["passage_text"]
    plain = cluster.request("POST", "/os-rerank-scenario/_search", body=dict(body, size=1),
                            params={"search_pipeline": "_none"})
    assert plain["hits"]["hits"][0]["_id"] != result["hits"]["hits"][0]["_id"]  # match_all's first is not it


def test_render_shows_the_windowing_processors_exactly(fake_backend: Backend) -> None:
    code, out, err = fake_backend.run("render", "--config", str(fake_backend.config(pipeline={"oversample": 4})),
                                      "--what", "pipeline")
    assert code == 0, err
    body = json.loads(out.split("\n", 2)[2])
    assert body["request_processors"] == [{"oversample": {"sample_factor": 4}}]
    assert body["response_processors"][1] == {"truncate_hits": {}}
    code, out, err = fake_backend.run("render", "--config", str(fake_backend.config(pipeline={"oversample": 0.5})))
    assert code == 2 and "pipeline.oversample" in err
