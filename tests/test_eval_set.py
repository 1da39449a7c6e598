"""The shipped evaluation set (data/eval/): well formed, three languages, and hard for lexical matching."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from os_rerank.search.eval_set import load_corpus, load_qrels, load_queries
from tests.fakes.search import tokens

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "data" / "eval"


@pytest.fixture(scope="module")
def dataset() -> tuple[list, list, dict]:
    corpus = load_corpus(EVAL / "corpus.jsonl", ["passage_text"])
    queries = load_queries(EVAL / "queries.jsonl")
    qrels = load_qrels(EVAL / "qrels.txt")
    return corpus, queries, qrels


def language(text: str) -> str:
    if re.search(r"[\uac00-\ud7af]", text):
        return "ko"
    if re.search(r"[\u0900-\u097f]", text):
        return "hi"
    return "en"


def test_files_are_what_build_py_writes() -> None:
    spec = importlib.util.spec_from_file_location("eval_build", EVAL / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    corpus, queries, qrels = build.build()
    assert (EVAL / "corpus.jsonl").read_text(encoding="utf-8") == "".join(
        json.dumps(d, ensure_ascii=False) + "\n" for d in corpus)
    assert (EVAL / "queries.jsonl").read_text(encoding="utf-8") == "".join(
        json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    assert (EVAL / "qrels.txt").read_text(encoding="utf-8") == "".join(f"{q} 0 {d} {r}\n" for q, d, r in qrels)


def test_ids_unique_and_every_judgment_points_at_something(dataset: tuple[list, list, dict]) -> None:
    corpus, queries, qrels = dataset  # the loaders refuse duplicate ids
    doc_ids = {d["id"] for d in corpus}
    query_ids = {q.id for q in queries}
    assert len(doc_ids) == len(corpus) and len(query_ids) == len(queries)
    assert set(qrels) == query_ids
    for qid, judged in qrels.items():
        assert set(judged) <= doc_ids, qid
        assert set(judged.values()) <= {0, 1, 2}
        assert max(judged.values()) == 2, f"{qid} has no passage that answers it"
        assert 0 in judged.values(), f"{qid} has no judged distractor"


def test_size_and_languages(dataset: tuple[list, list, dict]) -> None:
    corpus, queries, _ = dataset
    assert len(queries) >= 30 and len(corpus) >= 200
    per_language = Counter(language(q.text) for q in queries)
    assert set(per_language) == {"en", "ko", "hi"} and min(per_language.values()) >= 10
    passages = Counter(language(d["passage_text"]) for d in corpus)
    assert min(passages[lang] for lang in ("en", "ko", "hi")) >= 50
    for doc in corpus:
        sentences = re.split(r"(?<=[.?!।])\s+", doc["passage_text"].strip())
        assert 1 <= len(sentences) <= 3, doc["id"]


def words(text: str) -> list[str]:
    """Unicode words as OpenSearch's standard tokenizer sees them (the test double's analyzer), NFKC-normalized."""
    return tokens(unicodedata.normalize("NFKC", text))


def bm25_rankings(corpus: list, queries: list, k1: float = 1.2, b: float = 0.75) -> dict[str, list[str]]:
    docs = {d["id"]: Counter(words(d["passage_text"])) for d in corpus}
    lengths = {i: sum(c.values()) for i, c in docs.items()}
    avg = sum(lengths.values()) / len(docs)
    df: Counter[str] = Counter()
    for c in docs.values():
        df.update(c.keys())
    out = {}
    for q in queries:
        scores: dict[str, float] = {}
        for term in words(q.text):
            if not df[term]:
                continue
            idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
            for i, tf in docs.items():
                if tf[term]:
                    norm = k1 * (1 - b + b * lengths[i] / avg)
                    scores[i] = scores.get(i, 0.0) + idf * tf[term] * (k1 + 1) / (tf[term] + norm)
        out[q.id] = sorted(scores, key=lambda i: (-scores[i], i))
    return out


def test_lexical_matching_ranks_a_wrong_passage_first_for_many_queries(dataset: tuple[list, list, dict]) -> None:
    corpus, queries, qrels = dataset
    rankings = bm25_rankings(corpus, queries)
    wrong = [q.id for q in queries if not rankings[q.id] or qrels[q.id].get(rankings[q.id][0], 0) <= 0]
    # Reranking can only help when the answer is in the window: every answer is within BM25's top 50.
    for q in queries:
        best = [d for d, r in qrels[q.id].items() if r == 2]
        assert any(d in rankings[q.id][:50] for d in best), q.id
    assert len(wrong) >= len(queries) / 3
    documented = re.search(r"\*\*(\d+) of (\d+)\*\* queries", (EVAL / "README.md").read_text(encoding="utf-8"))
    assert documented is not None
    assert (int(documented.group(1)), int(documented.group(2))) == (len(wrong), len(queries)), wrong
