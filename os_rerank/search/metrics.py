"""Ranking metrics with their standard (trec_eval) definitions. Pure.

A ranking is the list of returned document ids, best first; `qrels` maps a judged document id to its graded
relevance (0 = judged not relevant). A document is relevant when its grade is > 0. Unjudged documents count as
not relevant. No IR metrics library is used: the light ones need a C build (pytrec_eval) or pull numba (ranx),
and these four definitions are a few lines each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of graded relevances in rank order: sum of (2^rel - 1) / log2(rank + 1)."""
    return sum((2.0**rel - 1.0) / math.log2(i + 2) for i, rel in enumerate(gains))


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """nDCG@k: DCG of the top k over the DCG of the ideal ordering of all judged documents (0 when none relevant)."""
    ideal = dcg(sorted((r for r in qrels.values() if r > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([max(qrels.get(doc, 0), 0) for doc in ranking[:k]]) / ideal


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none)."""
    for i, doc in enumerate(ranking[:k]):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """Fraction of the relevant documents found in the top k (0 when the query has none)."""
    relevant = {doc for doc, rel in qrels.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def hit_at_k(ranking: Sequence[str], qrels: Mapping[str, float], k: int) -> float:
    """1.0 when at least one relevant document is in the top k, else 0.0."""
    return 1.0 if any(qrels.get(doc, 0) > 0 for doc in ranking[:k]) else 0.0


def hit_rate(rankings: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, float]], k: int) -> float:
    """Fraction of queries with at least one relevant document in their top k ("has right in contexts")."""
    if not rankings:
        return 0.0
    return sum(hit_at_k(r, q, k) for r, q in zip(rankings, qrels, strict=True)) / len(rankings)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks (numpy's default); 0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
