"""The dense and hybrid first stages through the CLI (config `embedding`, os_rerank/provision/dense.py):
setup, search with each first stage, eval, a rerun with 0 writes, the dimension-mismatch plan error, and teardown.

The embedding endpoint is tests/fakes/embedder.py's hashed bag-of-words stand-in (16 dimensions), served over HTTP
as the rerank endpoints are; on the real node it listens on a fixed port per slot, so the connector URL (and the
trusted-endpoint regex setup adds for it) stays the same from run to run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Backend
from tests.fakes.embedder import DIM, EmbeddingEndpoint, HashedEmbedder
from tests.support.dense import QUERY, dense_config

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")


@pytest.fixture
def provisioned(dense_backend: Backend, embedders: dict[str, EmbeddingEndpoint]) -> Iterator[tuple[Backend, str]]:
    """A backend with a dense config; torn down before and after (the backend's own cleanup knows no dense path)."""
    config = dense_config(dense_backend, embedders["vector-embedding"])
    dense_backend.run("teardown", "--config", config)
    yield dense_backend, config
    dense_backend.run("teardown", "--config", config)


def _hits(backend: Backend, config: str, *extra: str) -> dict[str, Any]:
    code, result, err = backend.run_json("search", QUERY, "--config", config, *extra)
    assert code == 0, err
    return result


def test_dense_and_hybrid_setup_search_rerun_and_teardown(provisioned: tuple[Backend, str],
                                                          embedders: dict[str, EmbeddingEndpoint]) -> None:
    backend, config = provisioned
    code, plan, err = backend.run_json("plan", "--config", config)
    assert code == 0, err
    kinds = [(a["resource"], a["kind"]) for a in plan["actions"] if a["resource"] != "settings"]
    assert kinds[-7:] == [("embedding connector", "create"), ("embedding model", "create"),
                          ("ingest pipeline", "create"), ("dense index", "create"), ("dense documents", "create"),
                          ("hybrid pipeline", "create"), ("hybrid pipeline", "create")]
    index_body = next(a["body"] for a in plan["actions"] if a["resource"] == "dense index")
    assert index_body["mappings"]["properties"]["embedding"] == {
        "type": "knn_vector", "dimension": DIM, "method": {"name": "hnsw", "engine": "lucene",
                                                           "space_type": "cosinesimil"}}

    code, first, err = backend.run_json("setup", "--config", config)
    assert code == 0, err
    assert first["verify"]["passed"] is True
    assert first["ids"]["embedding_model"] and first["writes"] >= 13

    code, again, err = backend.run_json("setup", "--config", config)
    assert (code, again["writes"]) == (0, 0), err
    assert all(a["kind"] == "no change" for a in again["plan"]["actions"])

    # Every document reached the index with the stand-in's vector of its text: the embedder saw each text exactly.
    embedder = embedders["vector-embedding"]
    embedder.clear_received()
    lexical = _hits(backend, config, "--first-stage", "lexical", "--compare")
    dense = _hits(backend, config, "--first-stage", "dense", "--compare")
    hybrid = _hits(backend, config, "--compare")  # the default with an embedding section
    assert embedder.received_texts() == [QUERY] * 4  # one embedding of the query per neural search (2 each)
    assert lexical["index"] == "os-rerank-scenario" and lexical["pipeline"] == "os_rerank_scenario"
    assert dense["index"] == hybrid["index"] == "os-rerank-scenario-dense"
    assert (dense["pipeline"], hybrid["pipeline"]) == ("os_rerank_scenario", "os_rerank_scn_hybrid_rerank")
    for result in (lexical, dense, hybrid):
        assert result["hits"][0]["source"]["passage_text"].startswith("Washington, D.C.")
        assert all("embedding" not in h["source"] for h in result["hits"])
        assert all(h["was"] is not None for h in result["hits"])  # each hit's first-stage rank
    # The dense first stage ranks by the stand-in's cosine similarity: the same order computed here.
    vec = HashedEmbedder().embed_one
    texts = {h["id"]: h["source"]["passage_text"] for h in lexical["hits"]}

    def cosine(text: str) -> float:
        return sum(a * b for a, b in zip(vec(QUERY), vec(text), strict=True))

    by_was = sorted(dense["hits"], key=lambda h: h["was"])
    assert [h["id"] for h in by_was] == sorted(texts, key=lambda i: -cosine(texts[i]))[:len(by_was)]
    # ...scored as Lucene's cosine space scores, (1 + cos) / 2: the double and the node agree on the number.
    for hit in dense["hits"]:
        assert hit["score_without_rerank"] == pytest.approx((1 + cosine(texts[hit["id"]])) / 2, abs=1e-6)
    assert (lexical["first_stage"], dense["first_stage"], hybrid["first_stage"]) == ("lexical", "dense", "hybrid")
    # Hybrid: each sub-query's scores min-max normalised (0 becomes 0.001), then 0.3 * BM25 + 0.7 * neural.
    def min_max(scores: dict[str, float]) -> dict[str, float]:
        low, high = min(scores.values()), max(scores.values())
        return {i: ((s - low) / (high - low) or 0.001) if high > low else 1.0 for i, s in scores.items()}

    bm25 = min_max({h["id"]: h["score_without_rerank"] for h in lexical["hits"]})
    neural = min_max({h["id"]: h["score_without_rerank"] for h in dense["hits"]})
    for hit in hybrid["hits"]:
        want = 0.3 * bm25.get(hit["id"], 0.0) + 0.7 * neural.get(hit["id"], 0.0)
        assert hit["score_without_rerank"] == pytest.approx(want, abs=1e-5), hit["id"]
    # Hybrid combines min-max normalised scores: its first-stage best score is 1 or close (0.3 + 0.7 at most).
    assert max(h["score_without_rerank"] for h in hybrid["hits"]) <= 1.0 + 1e-6

    code, rows, err = backend.run_json("status", "--config", config)
    assert code == 0, err
    states = {(r["resource"], r["name"]): r["state"] for r in rows}
    assert states[("dense index", "os-rerank-scenario-dense")] == f"4 documents, embedding knn_vector dimension {DIM}"

    code, out, err = backend.run("teardown", "--config", config)
    assert code == 0, err
    order = [line.split()[1:3] for line in err.splitlines() if line.startswith(("-", "~"))]
    assert order[:4] == [["hybrid", "pipeline"], ["hybrid", "pipeline"], ["dense", "index"], ["ingest", "pipeline"]]
    code, rows, err = backend.run_json("status", "--config", config)
    left = [(r["resource"], r["name"], r["state"]) for r in rows if r["resource"] not in ("cluster", "setting")]
    assert all(state == "missing" for _, _, state in left), left


def test_a_dimension_mismatch_is_a_plan_error_never_a_rebuild(provisioned: tuple[Backend, str],
                                                              embedders: dict[str, EmbeddingEndpoint]) -> None:
    backend, config = provisioned
    code, _first, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    other = dense_config(backend, embedders["vector-embedding"], "eight.yaml", dimension=8)
    code, out, err = backend.run("setup", "--config", other)
    assert code != 0
    assert "k-NN index os-rerank-scenario-dense differs from what setup would make" in err
    assert f"embedding has dimension {DIM}, the endpoint gives 8" in err
    assert "Traceback" not in err
    code, again, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert (code, again["writes"]) == (0, 0), err


@pytest.mark.parametrize("contract", ["hf-feature-extraction", "tei-embed"])
def test_every_embedding_contract_provisions_and_searches(provisioned: tuple[Backend, str], contract: str,
                                                          embedders: dict[str, EmbeddingEndpoint]) -> None:
    backend, _ = provisioned
    config = dense_config(backend, embedders[contract], f"{contract}.yaml")
    try:
        code, report, err = backend.run_json("setup", "--config", config, "--no-verify")
        assert code == 0, err
        for stage in ("dense", "hybrid"):
            result = _hits(backend, config, "--first-stage", stage)
            assert result["hits"][0]["source"]["passage_text"].startswith("Washington, D.C.")
    finally:
        backend.run("teardown", "--config", config)


def test_eval_reports_every_first_stage_with_and_without_rerank(provisioned: tuple[Backend, str],
                                                                tmp_path: Path) -> None:
    backend, config = provisioned
    code, _report, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "q1", "text": QUERY}) + "\n", encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1 0 seed-3 1\n", encoding="utf-8")
    plot = tmp_path / "stages.png"
    code, report, err = backend.run_json("eval", "--config", config, "--queries", str(queries), "--qrels",
                                         str(qrels), "--depths", "10", "--plot", str(plot))
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert [r["first_stage"] for r in report["results"]] == ["lexical", "lexical"]  # what `gate` reads, unchanged
    stages = report["first_stages"]
    assert sorted(stages) == ["dense", "hybrid", "lexical"]
    for name, rows in stages.items():
        assert {r["run"] for r in rows} == {"without", "reranked"}, name
        for row in rows:
            assert row["recall@k"] == 1.0 and row["latency_ms"]["p50"] > 0


def test_verify_checks_the_dense_path_too(provisioned: tuple[Backend, str],
                                          embedders: dict[str, EmbeddingEndpoint]) -> None:
    backend, config = provisioned
    code, _report, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    code, report, err = backend.run_json("verify", "--config", config)
    assert (code, report["passed"]) == (0, True), err
    embedders["vector-embedding"].fail_next(500, "injected failure")
    code, out, err = backend.run("verify", "--config", config)
    assert code == 6
    assert "embedding predict through OpenSearch failed" in out + err
