"""eval: parsing queries, judgments and corpora (errors name file and line), depths, scoring and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from os_rerank.config import Config, load_config
from os_rerank.errors import ConfigError
from os_rerank.search.eval import check_depths, run_eval
from os_rerank.search.eval_report import Documents, EvalReport, RunScores, format_report
from os_rerank.search.eval_set import Query, load_corpus, load_qrels, load_queries, parse_depths
from tests.support.scripted import cluster_with

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- queries ----------------------------------------------------------------------------------------------------------


def test_queries_jsonl_and_tsv(tmp_path: Path) -> None:
    jsonl = write(tmp_path, "q.jsonl", '{"id": "1", "text": "capital of Korea"}\n\n{"id": 2, "text": "수도"}\n')
    assert load_queries(jsonl) == [Query("1", "capital of Korea"), Query("2", "수도")]
    tsv = write(tmp_path, "q.tsv", "# id\ttext\nq1\tभारत की राजधानी\nq2\tcapital\twith a tab\n")
    assert load_queries(tsv) == [Query("q1", "भारत की राजधानी"), Query("q2", "capital\twith a tab")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": "1", "text": "a"}\n{"id": "2", "text": "b",}\n', ":2: invalid JSON"),
        ('{"id": "1", "text": "a"}\n{"id": "1", "text": "b"}\n', ":2: duplicate query id '1'"),
        ('{"id": "1", "text": "a"}\n{"id": "2"}\n', ':2: expected {"id": ..., "text": "..."}'),
        ('{"id": "1", "text": "a"}\n["x"]\n', ":2: expected a JSON object"),
        ("q1\tfine\nq2 no tab\n", ":2: expected id<TAB>text"),
        ("q1\tfine\nq2\t  \n", ":2: empty query id or text"),
        ("\n\n", ": no queries"),
    ],
)
def test_query_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "queries.txt", text)
    with pytest.raises(ConfigError) as info:
        load_queries(path)
    assert info.value.message.startswith(f"{path}{message}")


def test_unreadable_queries_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="queries file not found"):
        load_queries(tmp_path / "missing.jsonl")


# --- judgments --------------------------------------------------------------------------------------------------------


def test_qrels_trec_and_jsonl(tmp_path: Path) -> None:
    trec = write(tmp_path, "qrels.txt", "q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    assert load_qrels(trec) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    jsonl = write(tmp_path, "qrels.jsonl", '{"query_id": "q1", "doc_id": "d1", "relevance": 2}\n'
                                           '{"query_id": 7, "doc_id": 8, "relevance": 1.0}\n')
    assert load_qrels(jsonl) == {"q1": {"d1": 2}, "7": {"8": 1}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 2\nq1 0 d2\n", ":2: expected 4 columns `query_id 0 doc_id relevance`, found 3"),
        ("q1 0 d1 2\nq1 0 d2 high\n", ":2: relevance must be an integer, not 'high'"),
        ('{"query_id": "q", "doc_id": "d", "relevance": 1}\n{"query_id": "q", "doc_id": "e"}\n',
         ':2: expected {"query_id", "doc_id", "relevance"}'),
        ('{"query_id": "q", "doc_id": "d", "relevance": 1.5}\n', ":1: relevance must be an integer, not 1.5"),
        ('{"query_id": "q", "doc_id": "d", "relevance": true}\n', ":1: relevance must be an integer, not True"),
        ("\n", ": no judgments"),
    ],
)
def test_qrels_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "qrels", text)
    with pytest.raises(ConfigError) as info:
        load_qrels(path)
    assert info.value.message.startswith(f"{path}{message}")


# --- corpus and depths ------------------------------------------------------------------------------------------------


def test_corpus(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"id": 1, "passage_text": "a", "extra": 2}\n')
    assert load_corpus(path, ["passage_text"]) == [{"id": "1", "passage_text": "a", "extra": 2}]
    path = write(tmp_path, "c.jsonl", '{"id": 1, "passage_text": "a"}\n{"id": 2, "title": "b"}\n')
    with pytest.raises(ConfigError) as info:
        load_corpus(path, ["passage_text"])
    assert info.value.message == f"{path}:2: document '2' lacks passage_text"
    path = write(tmp_path, "c.jsonl", '{"id": 1, "passage_text": "a"}\n{"id": 1, "passage_text": "b"}\n')
    with pytest.raises(ConfigError, match=":2: duplicate id .1."):
        load_corpus(path, ["passage_text"])


def test_depths() -> None:
    assert parse_depths("50,10,20,10") == (10, 20, 50)
    with pytest.raises(ConfigError, match="comma-separated integers"):
        parse_depths("10,x")
    with pytest.raises(ConfigError, match="positive"):
        parse_depths("0,10")


def test_depth_over_max_batch_names_the_field() -> None:
    config = load_config("config.example.yaml", {})
    with pytest.raises(ConfigError) as info:
        check_depths(config, (10, 200))
    assert "--depths 200 is larger than sagemaker.max_batch (100)" in info.value.message


# --- run_eval over recorded responses -------------------------------------------------------------------------------


def page(*ids: str) -> dict:
    hits = [{"_index": "my-test-data", "_id": i, "_score": 1.0 / n, "_source": {"passage_text": i}}
            for n, i in enumerate(ids, 1)]
    return {"took": 1, "hits": {"total": {"value": len(ids), "relation": "eq"}, "hits": hits}}


@pytest.fixture
def config() -> Config:
    return load_config("config.example.yaml", {})


def test_run_eval_scores_both_runs_and_skips_the_reranker_on_empty_pages(config: Config) -> None:
    queries = [Query("q1", "capital"), Query("q2", "nothing matches"), Query("q3", "unjudged")]
    qrels = {"q1": {"d2": 2, "d9": 1}, "q2": {"d1": 1}, "q4": {"d1": 1}}
    cluster, transport = cluster_with(
        page("d1", "d2", "d3", "d4"),  # the test index exists (counted by a size-0 search naming pipeline _none)
        page("d1", "d2", "d3"), page("d2", "d1", "d3"),  # q1 without, then reranked
        page(),  # q2 finds nothing: no reranked request
    )
    events: list[str] = []
    report = run_eval(cluster, config, queries, qrels, depths=(3,), on_event=lambda event: events.append(event.line()))
    assert [(s[0], s[1], s[2]) for s in transport.sent] == [
        ("POST", "/my-test-data/_search", {"search_pipeline": "_none"}),  # the count: size 0, no pipeline
        ("POST", "/my-test-data/_search", {"search_pipeline": "_none"}),
        ("POST", "/my-test-data/_search", {"search_pipeline": "rerank_pipeline_sagemaker"}),
        ("POST", "/my-test-data/_search", {"search_pipeline": "_none"}),
    ]
    without, reranked = report.row(3, "without"), report.row(3, "reranked")
    # q1 without: d2 at rank 2 -> MRR 1/2; reranked: d2 first -> 1. q2 scores 0 in both. Means over 2 queries.
    assert (without.mrr, reranked.mrr) == (0.25, 0.5)
    assert without.recall == reranked.recall == 0.25  # q1 finds 1 of its 2 relevant docs
    assert without.hit_rate == reranked.hit_rate == 0.5
    assert (without.searches, reranked.searches) == (2, 1)
    assert report.evaluated == ("q1", "q2")
    assert report.notes == ("1 queries have no relevant judgment and are not scored",
                            "1 query ids in the judgments are not in the queries file (first: q4)")
    assert events == ["eval: depth 3: queries 1-2 of 2 done"]
    assert report.rankings["q1"][3] == {"without": ["d1", "d2", "d3"], "reranked": ["d2", "d1", "d3"]}


def test_run_eval_without_the_test_index_says_what_to_do(config: Config) -> None:
    from os_rerank.errors import ClusterError
    from tests.support.scripted import recorded

    cluster, _ = cluster_with((404, recorded("errors")["index_not_found"]))
    with pytest.raises(ClusterError) as info:
        run_eval(cluster, config, [Query("q", "x")], {"q": {"d": 1}}, depths=(10,))
    assert info.value.fix is not None and "--corpus" in info.value.fix


def test_report_table() -> None:
    rows = (
        RunScores(10, "without", 0.5, 0.25, 0.75, 1.0, 3.04, 9.96, 2),
        RunScores(10, "reranked", 0.75, 0.5, 0.75, 1.0, 20.0, 31.25, 2),
    )
    report = EvalReport(Documents("idx-eval", 3, "c.jsonl", "loaded"), 2, ("a", "b"), 5, (10,), rows)
    assert format_report(report).splitlines()[:6] == [
        "documents: corpus c.jsonl in index idx-eval (3 documents, loaded now)",
        "queries: 2 of 2 scored, 5 judgments",
        "",
        "depth  run       nDCG@10  MRR@10  Recall@k  Hit@k   p50 ms  p95 ms",
        "-----  --------  -------  ------  --------  ------  ------  ------",
        "10     without   0.5000   0.2500  0.7500    1.0000  3.0     10.0",
    ]
    assert report.to_json()["results"][1]["ndcg@10"] == 0.75


# --- the plot ---------------------------------------------------------------------------------------------------------


def _report() -> EvalReport:
    rows = tuple(
        RunScores(d, run, 0.4 + d / 500 + (0.1 if run == "reranked" else 0), 0.3, d / 50, d / 50, 2.0 + d / 10,
                  4.0 + d / 5, 3)
        for d in (10, 20, 50) for run in ("without", "reranked")
    )
    return EvalReport(Documents("idx", 10), 3, ("a", "b", "c"), 9, (10, 20, 50), rows)


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from os_rerank.errors import OsRerankError
    from os_rerank.search.eval_report import plot_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(OsRerankError) as info:
        plot_report(_report(), tmp_path / "eval.png")
    assert info.value.lines() == ["--plot needs matplotlib, which is not installed",
                                  "fix: pip install 'os-rerank[plot]'"]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the optional [plot] extra)")
    from os_rerank.search.eval_report import plot_report

    path = tmp_path / "eval.png"
    plot_report(_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
