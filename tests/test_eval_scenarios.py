"""`eval` end to end through the CLI on every scenario backend, with the shipped evaluation set (data/eval/).

On the fake backend (the double + the lexical scorer) the output is deterministic except for latency, which the
golden comparison masks (tests/data/golden/eval.txt; OS_RERANK_UPDATE_GOLDEN=1 rewrites it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_rerank.cluster import connect
from os_rerank.config import load_config
from tests.backends import Backend
from tests.support.scenarios import EVAL_ARGS, ROOT, check_golden, set_up

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # file names in the output are as given on the command line


@pytest.fixture
def evaluated(backend: Backend, in_repo: None) -> Iterator[tuple[Backend, str]]:
    config = set_up(backend)
    cluster = connect(load_config(config, backend.environ))
    cluster.request("DELETE", "/os-rerank-scenario-eval", missing_ok=True)  # left by an interrupted run
    yield backend, config
    cluster.request("DELETE", "/os-rerank-scenario-eval", missing_ok=True)


def mask_latency(text: str) -> str:
    """The report with its two latency columns (the last two of each result row) replaced by `~`."""
    return "\n".join(re.sub(r"\d+\.\d+\s+\d+\.\d+$", "~  ~", line) if re.match(r"\d+\s", line) else line
                     for line in text.split("\n"))


def test_eval_loads_the_corpus_once_and_scores_both_runs(evaluated: tuple[Backend, str]) -> None:
    backend, config = evaluated
    code, data, err = backend.run_json("eval", "--config", config, *EVAL_ARGS, "--depths", "10,20")
    assert code == 0, err
    assert data["documents"] == {"index": "os-rerank-scenario-eval", "count": 217,
                                 "corpus": "data/eval/corpus.jsonl", "action": "loaded"}
    assert (data["queries"], data["evaluated"], data["depths"]) == (34, 34, [10, 20])
    assert [(r["depth"], r["run"]) for r in data["results"]] == [
        (10, "without"), (10, "reranked"), (20, "without"), (20, "reranked")]
    for without, reranked in zip(data["results"][::2], data["results"][1::2], strict=True):
        assert without["recall@k"] == reranked["recall@k"]  # the reranker reorders the window, no more
        assert reranked["latency_ms"]["p50"] > 0
    assert err.splitlines() == [
        "eval: loading 217 documents into os-rerank-scenario-eval",
        *(f"eval: depth {d}: queries {a}-{b} of 34 done" for d in (10, 20)
          for a, b in ((1, 10), (11, 20), (21, 30), (31, 34))),
    ]

    code, data, err = backend.run_json("eval", "--config", config, *EVAL_ARGS, "--depths", "10")
    assert code == 0, err
    assert data["documents"]["action"] == "reused"
    assert err.splitlines()[0] == "eval: index os-rerank-scenario-eval already holds 217 documents; reusing it"

    code, out, err = backend.run("teardown", "--config", config)  # teardown removes what eval made too
    assert code == 0, err
    assert "- index os-rerank-scenario-eval deleted" in err.splitlines()  # steps are progress: stderr


def test_eval_on_the_test_index(evaluated: tuple[Backend, str], tmp_path: Path) -> None:
    backend, config = evaluated
    queries = tmp_path / "q.tsv"
    queries.write_text("cap\tWhat is the capital of the United States?\n", encoding="utf-8")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("cap 0 seed-3 2\ncap 0 seed-4 0\n", encoding="utf-8")
    code, out, err = backend.run("eval", "--config", config, "--queries", str(queries), "--qrels", str(qrels),
                                 "--depths", "10")
    assert code == 0, err
    assert out.startswith("documents: the test index os-rerank-scenario (4 documents)\n")


def test_eval_golden(fake_backend: Backend, in_repo: None) -> None:
    config = set_up(fake_backend)
    code, out, err = fake_backend.run("eval", "--config", config, *EVAL_ARGS)
    assert code == 0, err
    check_golden("eval.txt", mask_latency(out))


def test_eval_input_errors_name_file_and_line(fake_backend: Backend, tmp_path: Path) -> None:
    config = str(fake_backend.config())
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 d1 2\nq1 0 d2\n", encoding="utf-8")
    code, out, err = fake_backend.run("eval", "--config", config, "--queries", "data/eval/queries.jsonl",
                                      "--qrels", str(qrels))
    assert (code, out) == (2, "")
    assert err == f"os-rerank: error: {qrels}:2: expected 4 columns `query_id 0 doc_id relevance`, found 3\n"
    code, out, err = fake_backend.run("eval", "--config", config, *EVAL_ARGS, "--depths", "10,500")
    assert code == 2 and "--depths 500 is larger than sagemaker.max_batch (100)" in err
