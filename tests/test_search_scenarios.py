"""`search` end to end through the CLI: set up with `os-rerank setup`, then search, on every scenario backend.

The fake backend is the OpenSearch double with the local endpoint's lexical scorer, so its output is deterministic
and kept as a golden file (tests/data/golden/search_compare.txt; OS_RERANK_UPDATE_GOLDEN=1 rewrites it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import Backend
from tests.support.scenarios import check_golden, set_up

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

QUERY = "What is the capital of the United States?"


def test_search_puts_the_answer_first_and_shows_where_it_was(backend: Backend) -> None:
    config = set_up(backend)
    code, data, err = backend.run_json("search", "--config", config, QUERY, "--compare", "--size", "4")
    assert (code, err) == (0, "")
    assert data["total"] == 4 and data["window"] == 20
    top = data["hits"][0]
    assert top["source"]["passage_text"].startswith("Washington, D.C.")
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3, 4]
    assert sorted(h["was"] for h in data["hits"]) == [1, 2, 3, 4]
    assert top["was"] != 1  # lexically, "capital punishment ... United States" comes first
    assert data["latency_ms"]["reranked"] > 0 and data["latency_ms"]["without_rerank"] > 0


def test_search_with_no_hits_sends_nothing_to_the_reranker(backend: Backend) -> None:
    config = set_up(backend)
    code, out, err = backend.run("search", "--config", config, "zzqx", "--compare")
    assert (code, out.splitlines()[-1]) == (0, "(no hits to show)")
    assert err == "os-rerank: note: no hits: nothing was sent to the reranker\n"
    code, out, err = backend.run("search", "--config", config, "zzqx")  # the processor passes an empty page through
    assert (code, err) == (0, "")
    assert "0 hits" in out


def test_search_window_over_max_batch_is_refused(backend: Backend) -> None:
    config = set_up(backend, sagemaker={"max_batch": 10})
    code, out, err = backend.run("search", "--config", config, QUERY, "--window", "11")
    assert (code, out) == (2, "")
    assert "--window 11 is larger than sagemaker.max_batch (10)" in err
    code, data, err = backend.run_json("search", "--config", config, QUERY)
    assert (code, data["window"]) == (0, 10)


def test_search_with_query_json(backend: Backend, tmp_path: Path) -> None:
    config = set_up(backend)
    query = tmp_path / "q.json"
    query.write_text('{"query": {"match": {"passage_text": "capital"}}, "from": 3, "size": 1}', encoding="utf-8")
    code, data, err = backend.run_json("search", "--config", config, QUERY, "--query-json", str(query))
    assert code == 0, err
    assert data["notes"] == ["--query-json: size replaced by os-rerank", "--query-json: from replaced by os-rerank"]
    assert data["hits"][0]["source"]["passage_text"].startswith("Washington, D.C.")


def test_search_compare_golden(fake_backend: Backend) -> None:
    config = set_up(fake_backend)
    code, out, err = fake_backend.run("search", "--config", config, QUERY, "--compare")
    assert (code, err) == (0, "")
    check_golden("search_compare.txt", out)


def test_search_multilingual_golden(fake_backend: Backend) -> None:
    corpus = Path(__file__).resolve().parent.parent / "data" / "eval" / "corpus.jsonl"
    config = set_up(fake_backend, index={"documents": str(corpus)}, verify={"expected_top": None})
    outputs = []
    for query in ("감기 빨리 낫는 법", "How to treat a burn at home"):
        code, out, err = fake_backend.run("search", "--config", config, query, "--compare", "--size", "3")
        assert (code, err) == (0, "")
        outputs.append(out)
    check_golden("search_multilingual.txt", "\n".join(outputs))


def test_search_against_a_missing_pipeline_says_how_to_fix_it(fake_backend: Backend) -> None:
    set_up(fake_backend)
    other = str(fake_backend.config("other.yaml", pipeline={"name": "not_there"}))
    code, out, err = fake_backend.run("search", "--config", other, QUERY)
    assert (code, out) == (4, "")
    assert "Pipeline not_there is not defined" in err
    assert "fix: create the search pipeline 'not_there' with `os-rerank setup`" in err


@pytest.mark.parametrize("size", ["0", "-1"])
def test_search_size_must_be_positive(fake_backend: Backend, size: str) -> None:
    config = str(fake_backend.config())
    code, _, err = fake_backend.run("search", "--config", config, QUERY, "--size", size)
    assert code == 2 and f"argument --size/-n: expected a number of hits from 1 to 10000, got '{size}'" in err
