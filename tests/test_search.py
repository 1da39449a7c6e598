"""search: request builders, response parsing and formatting, and run_search over a scripted transport.

The transport below answers with recorded response shapes (tests/data/opensearch/search_*.json) underneath the real
`Cluster.request`, so serialization and error mapping run for real. Scenario tests against the ML Commons double
live in tests/test_search_scenarios.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from os_rerank.cli import main
from os_rerank.config import Config, load_config
from os_rerank.errors import ClusterError, ConfigError
from os_rerank.search.query import (
    build_search_body,
    default_window,
    first_stage_query,
    format_search,
    load_query_json,
    movement,
    parse_page,
    resolve_window,
    run_search,
)
from tests.support.scripted import cluster_with, recorded

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

QUERY = "What is the capital of the United States?"


@pytest.fixture
def config() -> Config:
    return load_config("config.example.yaml", {})


# --- builders ---------------------------------------------------------------------------------------------------------


def test_first_stage_is_match_for_one_field_multi_match_for_several() -> None:
    assert first_stage_query("q", ["passage_text"]) == {"match": {"passage_text": {"query": "q"}}}
    assert first_stage_query("q", ["title", "body"]) == {"multi_match": {"query": "q", "fields": ["title", "body"]}}


def test_reranked_body_carries_query_text_total_tracking_and_window() -> None:
    body = build_search_body(QUERY, query={"match_all": {}}, window=20, rerank=True)
    assert body == {
        "query": {"match_all": {}},
        "size": 20,
        "track_total_hits": True,
        "ext": {"rerank": {"query_context": {"query_text": QUERY}}},
    }


def test_plain_body_has_no_rerank_ext_and_keeps_other_ext() -> None:
    base = {"query": {"match_all": {}}, "ext": {"rerank": {"query_context": {"query_text_path": "x"}}, "other": 1}}
    body = build_search_body(QUERY, query={"match_all": {}}, window=5, rerank=False, base=base)
    assert body["ext"] == {"other": 1}
    body = build_search_body(QUERY, query={"match_all": {}}, window=5, rerank=False)
    assert "ext" not in body


def test_page_keys_of_a_full_body_are_replaced_never_sent() -> None:
    base = {"query": {"match_all": {}}, "from": 40, "size": 0, "search_after": [1], "track_total_hits": False,
            "_source": ["passage_text"], "ext": {"rerank": {"query_context": {"query_text_path": "query.x"}}}}
    body = build_search_body("q", query=base["query"], window=10, rerank=True, base=base)
    assert "from" not in body and "search_after" not in body
    assert (body["size"], body["track_total_hits"], body["_source"]) == (10, True, ["passage_text"])
    assert body["ext"]["rerank"] == {"query_context": {"query_text": "q"}}  # never query_text_path as well


def test_size_zero_is_never_built() -> None:
    with pytest.raises(ValueError, match="size-0"):
        build_search_body("q", query={"match_all": {}}, window=0, rerank=True)


def test_default_window() -> None:
    assert default_window(5, 100) == 20
    assert default_window(10, 100) == 40
    assert default_window(10, 30) == 30


def test_window_larger_than_max_batch_names_the_config_field(config: Config) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_window(config, 5, 101)
    assert "sagemaker.max_batch (100)" in info.value.message
    with pytest.raises(ConfigError, match="smaller than --size"):
        resolve_window(config, 10, 5)
    with pytest.raises(ConfigError, match="--size must be at least 1"):
        resolve_window(config, 0, None)
    assert resolve_window(config, 5, None) == 20
    with pytest.raises(ConfigError, match=r"--size 101 is larger than sagemaker.max_batch \(100\)"):
        resolve_window(config, 101, None)


def test_movement() -> None:
    assert [movement(1, 3), movement(3, 2), movement(2, 2), movement(1, None)] == ["↑2", "↓1", "=", "new"]


# --- query files ------------------------------------------------------------------------------------------------------


def test_query_json_holds_a_query_or_a_body(tmp_path: Path) -> None:
    q = tmp_path / "q.json"
    q.write_text('{"match": {"passage_text": "capital"}}', encoding="utf-8")
    assert load_query_json(q) == ({"match": {"passage_text": "capital"}}, None)
    q.write_text('{"query": {"match_all": {}}, "_source": false}', encoding="utf-8")
    assert load_query_json(q) == ({"match_all": {}}, {"query": {"match_all": {}}, "_source": False})


def test_bad_query_json_names_file_and_line(tmp_path: Path) -> None:
    q = tmp_path / "q.json"
    q.write_text('{\n  "match": {\n    "passage_text": "capital",\n  }\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_query_json(q)
    assert info.value.message.startswith(f"{q}:4:")
    q.write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_query_json(q)
    with pytest.raises(ConfigError, match="cannot read"):
        load_query_json(tmp_path / "missing.json")


# --- parsing ----------------------------------------------------------------------------------------------------------


def test_parse_recorded_page() -> None:
    page = parse_page(recorded("search_reranked_capital"), latency_ms=12.5)
    assert page.total == 4 and page.took_ms == 41 and page.latency_ms == 12.5
    assert [h.id for h in page.hits] == ["seed-3", "seed-1", "seed-2", "seed-4"]
    assert [h.rank for h in page.hits] == [1, 2, 3, 4]
    assert page.hits[0].score == pytest.approx(0.9998)
    assert page.hits[0].source["passage_text"].startswith("Washington, D.C.")


def test_parse_refuses_a_page_without_total() -> None:
    response = recorded("search_empty")
    del response["hits"]["total"]
    with pytest.raises(ClusterError, match="track_total_hits"):
        parse_page(response)
    assert parse_page(recorded("search_empty")).total == 0


# --- run_search over the scripted transport -------------------------------------------------------------------------


def test_run_search_sends_one_reranked_request(config: Config) -> None:
    cluster, transport = cluster_with(recorded("search_reranked_capital"))
    result = run_search(cluster, config, QUERY, size=2)
    [(method, path, params, body)] = transport.sent
    assert (method, path, params) == ("POST", "/my-test-data/_search", {"search_pipeline": "rerank_pipeline_sagemaker"})
    assert body["size"] == 20 and body["track_total_hits"] is True
    assert body["query"] == {"match": {"passage_text": {"query": QUERY}}}
    assert body["ext"] == {"rerank": {"query_context": {"query_text": QUERY}}}
    assert [h.id for h in result.hits] == ["seed-3", "seed-1"]
    assert result.total == 4 and result.window == 20
    assert cluster.writes() == []


def test_compare_runs_without_pipeline_first_and_reports_old_ranks(config: Config) -> None:
    cluster, transport = cluster_with(recorded("search_plain_capital"), recorded("search_reranked_capital"))
    result = run_search(cluster, config, QUERY, size=4, window=4, compare=True)
    assert [s[2] for s in transport.sent] == [{"search_pipeline": "_none"},
                                              {"search_pipeline": "rerank_pipeline_sagemaker"}]
    assert "ext" not in transport.sent[0][3]
    assert transport.sent[0][3]["size"] == transport.sent[1][3]["size"] == 4
    assert [(h.id, h.rank, h.was) for h in result.hits] == [
        ("seed-3", 1, 2), ("seed-1", 2, 3), ("seed-2", 3, 4), ("seed-4", 4, 1)
    ]
    assert result.hits[0].before == pytest.approx(1.5123458)


def test_compare_with_no_hits_sends_nothing_to_the_reranker(config: Config) -> None:
    cluster, transport = cluster_with(recorded("search_empty"))
    result = run_search(cluster, config, "zzz", compare=True)
    assert len(transport.sent) == 1 and transport.sent[0][2] == {"search_pipeline": "_none"}
    assert result.hits == () and result.reranked is None
    assert "no hits: nothing was sent to the reranker" in result.notes
    assert format_search(result, ["passage_text"]).endswith("(no hits to show)")


def test_min_score_hides_low_reranked_scores(config: Config) -> None:
    cluster, _ = cluster_with(recorded("search_reranked_capital"))
    result = run_search(cluster, config, QUERY, min_score=0.01)
    assert [h.id for h in result.hits] == ["seed-3", "seed-1"]


def test_empty_query_text_is_refused_before_any_request(config: Config) -> None:
    cluster, transport = cluster_with()
    with pytest.raises(ConfigError, match="query text is empty"):
        run_search(cluster, config, "  ")
    assert transport.sent == []


def test_rerank_failure_shows_the_processors_reason_and_a_fix(config: Config) -> None:
    """The fix users see: the one remedy table's, installed on the cluster the CLI opens (diagnose.open_cluster)."""
    from os_rerank.provision.diagnose import diagnoser

    cluster, _ = cluster_with((500, recorded("search_error_rerank_length")))
    cluster.diagnose = diagnoser(config)
    with pytest.raises(ClusterError) as info:
        run_search(cluster, config, QUERY)
    assert "scores and hits are not the same length (illegal_state_exception)" in info.value.message
    assert info.value.fix is not None and "one FLOAT32 score per document" in info.value.fix


def test_missing_index_suggests_setup(config: Config) -> None:
    errors = recorded("errors")
    cluster, _ = cluster_with((404, errors["index_not_found"]))
    with pytest.raises(ClusterError) as info:
        run_search(cluster, config, QUERY)
    assert info.value.fix == "create the index 'my-test-data' with `os-rerank setup`"


# --- formatting -------------------------------------------------------------------------------------------------------


def test_format_compare_table(config: Config) -> None:
    cluster, _ = cluster_with(recorded("search_plain_capital"), recorded("search_reranked_capital"))
    result = run_search(cluster, config, QUERY, size=3, window=4, compare=True)
    lines = format_search(result, ["passage_text"]).splitlines()
    assert lines[0] == f'"{QUERY}" in my-test-data: 4 hits, top 4 reranked by rerank_pipeline_sagemaker'
    assert lines[1].split() == ["rank", "was", "score", "before", "id", "text"]
    assert lines[3].startswith("1     2 ↑1  0.9998  1.5123  seed-3  Washington, D.C.")
    assert len(lines) == 6


def test_format_aligns_korean_and_hindi() -> None:
    from os_rerank.output import display_width
    from os_rerank.search.query import Hit, Page, SearchResult

    hits = (
        Hit(1, "ko", 0.9, {"passage_text": "대한민국의 수도는 서울이다."}),
        Hit(2, "hi", 0.5, {"passage_text": "भारत की राजधानी नई दिल्ली है।"}),
        Hit(3, "en", 0.1, {"passage_text": "The capital of France is Paris."}),
    )
    page = Page(3, hits, 1.0, 1.0)
    result = SearchResult("수도", "idx", "p", 3, 20, 3, hits, page)
    lines = format_search(result, ["passage_text"]).splitlines()[3:]
    texts = ["대한", "भारत", "The"]
    starts = {display_width(line[: line.index(text)]) for line, text in zip(lines, texts, strict=True)}
    assert len(starts) == 1


def test_cli_json_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import os_rerank.cluster as cluster_module

    responses = [recorded("search_reranked_capital"), recorded("search_reranked_capital")]
    monkeypatch.setattr(cluster_module, "connect", lambda config, **kw: cluster_with(*responses)[0])
    out, err = io.StringIO(), io.StringIO()
    code = main(["search", "-c", "config.example.yaml", QUERY, "--json", "--size", "1"], environ={}, stdout=out,
                stderr=err)
    assert (code, err.getvalue()) == (0, "")
    data = json.loads(out.getvalue())
    assert [h["id"] for h in data["hits"]] == ["seed-3"] and data["window"] == 20 and data["total"] == 4

    out = io.StringIO()
    code = main(["search", "-c", "config.example.yaml", QUERY, "--window", "101"], environ={}, stdout=out, stderr=err)
    assert code == 2
    assert "sagemaker.max_batch (100)" in err.getvalue()
