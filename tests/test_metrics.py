"""The metric functions against cases computed by hand (the arithmetic is in the comments)."""

import math

import pytest

from os_rerank.search.metrics import dcg, hit_at_k, hit_rate, mrr_at_k, ndcg_at_k, percentile, recall_at_k

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

QRELS = {"a": 2, "b": 1, "c": 0, "d": 1}  # c is judged not relevant; x, y are unjudged


def test_dcg_graded_gains() -> None:
    # (2^2-1)/log2(2) + (2^0-1)/log2(3) + (2^1-1)/log2(4) = 3 + 0 + 0.5
    assert dcg([2, 0, 1]) == pytest.approx(3.5)


def test_ndcg_perfect_ranking_is_one() -> None:
    assert ndcg_at_k(["a", "b", "d"], QRELS, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "d", "b", "c"], QRELS, 10) == pytest.approx(1.0)


def test_ndcg_hand_computed() -> None:
    # ranking x, b, a, c: DCG = 0 + 1/log2(3) + 3/log2(4) + 0 = 0.63093 + 1.5 = 2.13093
    # ideal (2, 1, 1): 3 + 1/log2(3) + 1/log2(4) = 3 + 0.63093 + 0.5 = 4.13093
    expected = (1 / math.log2(3) + 1.5) / (3 + 1 / math.log2(3) + 0.5)
    assert ndcg_at_k(["x", "b", "a", "c"], QRELS, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.51585, abs=1e-5)


def test_ndcg_ideal_uses_all_judged_docs_not_only_retrieved() -> None:
    # Only "a" retrieved at rank 1: DCG 3, ideal 4.13093 -> d and b missing cost 0.27
    assert ndcg_at_k(["a"], QRELS, 10) == pytest.approx(3 / (3 + 1 / math.log2(3) + 0.5))


def test_ndcg_cut_at_k() -> None:
    # k=1: ranking b first -> DCG 1, ideal DCG@1 3
    assert ndcg_at_k(["b", "a"], QRELS, 1) == pytest.approx(1 / 3)


def test_ndcg_no_relevant_is_zero() -> None:
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_mrr() -> None:
    assert mrr_at_k(["x", "c", "d", "a"], QRELS, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "c", "d"], QRELS, 2) == 0.0
    assert mrr_at_k(["a"], QRELS, 10) == 1.0


def test_recall() -> None:
    assert recall_at_k(["a", "x", "d"], QRELS, 10) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "x", "d"], QRELS, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a"], {"a": 0}, 10) == 0.0


def test_hit_rate() -> None:
    rankings = [["x", "a"], ["c"], ["y", "z", "b"]]
    qrels = [QRELS, QRELS, QRELS]
    assert hit_at_k(["x", "a"], QRELS, 1) == 0.0
    assert hit_rate(rankings, qrels, 2) == pytest.approx(1 / 3)
    assert hit_rate(rankings, qrels, 3) == pytest.approx(2 / 3)
    assert hit_rate([], [], 3) == 0.0


def test_percentile_matches_linear_interpolation() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(values, 95) == pytest.approx(38.5)  # pos 2.85 -> 30 + 0.85 * 10
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0
