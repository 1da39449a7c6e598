"""The lexical scorer: a sensible, deterministic ranking with no weights and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from os_rerank.server.lexical import LexicalScorer, tokenize

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

SAMPLE = Path(__file__).resolve().parents[1] / "os_rerank" / "data" / "sample_documents.jsonl"
DOCS = [json.loads(line)["passage_text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]
QUERY = "What is the capital of the United States?"


def test_lexical_ranks_washington_first_among_the_samples() -> None:
    scores = LexicalScorer().score([(QUERY, d) for d in DOCS])
    assert DOCS[max(range(4), key=scores.__getitem__)].startswith("Washington, D.C.")
    assert all(0.0 <= s < 1.0 for s in scores)


def test_unigram_bm25_alone_would_not() -> None:
    # Why the ordered-bigram feature exists: term counts alone favour the capital-punishment passage.
    scores = LexicalScorer(bigram_weight=0.0).score([(QUERY, d) for d in DOCS])
    assert DOCS[max(range(4), key=scores.__getitem__)].startswith("Capital punishment")


def test_lexical_handles_korean_and_hindi() -> None:
    scorer = LexicalScorer()
    ko = scorer.score([("한국의 수도", "대한민국의 수도는 서울이다"), ("한국의 수도", "부산은 항구 도시이다")])
    hi = scorer.score([("भारत की राजधानी", "भारत की राजधानी नई दिल्ली है"), ("भारत की राजधानी", "मुंबई एक शहर है")])
    assert ko[0] > ko[1] == 0.0
    assert hi[0] > hi[1] == 0.0


def test_tokenize_keeps_devanagari_words_whole_and_bigrams_hangul() -> None:
    assert tokenize("हिन्दी: भारत!") == ["हिन्दी", "भारत"]
    assert tokenize("수도는 Straße ＡＢＣ") == ["수도는", "수도", "도는", "strasse", "abc"]


def test_lexical_is_deterministic_and_total() -> None:
    pairs = [(QUERY, d) for d in [*DOCS, "", "\x00\x01", "😀"]]
    assert LexicalScorer().score(pairs) == LexicalScorer().score(pairs)
    assert LexicalScorer().score(pairs)[4:] == [0.0, 0.0, 0.0]
    assert LexicalScorer().score([]) == []


def test_lexical_path_never_imports_torch() -> None:
    code = ("import sys; from os_rerank.server import app; from os_rerank.server.scorers import load_scorer; "
            "load_scorer(None).score([('a', 'a b')]); assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
