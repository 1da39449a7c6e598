"""The lexical scorer: a BM25 relevance function with an ordered-bigram feature, which needs no model weights and
never imports torch, so that demos and tests run the endpoint end to end anywhere (`os-rerank serve` without
--model). It speaks the same interface as the cross-encoder (scorers.Scorer).

Not packaged into model.tar.gz (aws/archive.py): the SageMaker handler always runs a model.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

# scorers.Pair and scorers.Turn, spelled here: scorers imports this module (load_scorer), not the other way round.
Pair = tuple[str, str]
Turn = Callable[[], AbstractContextManager[object]]


# Scripts written without spaces between words (or, for Hangul, with particles glued to the noun): a word token
# from them also yields its character bigrams, so "수도는" still matches "수도".
_BIGRAM_SCRIPTS = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of `text`: maximal runs of letters, digits and combining marks (NFKC, casefolded).

    Combining marks count as word characters so that Devanagari vowel signs and viramas stay inside their word
    (Python's `\\w` would split "हिन्दी"). Tokens in Hangul, kana or Han also contribute their character bigrams.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if unicodedata.category(ch)[0] in "LNM":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    out: list[str] = []
    for word in words:
        out.append(word)
        if len(word) > 2 and _BIGRAM_SCRIPTS.search(word):
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
    return out


class LexicalScorer:
    """A deterministic BM25 relevance function with an ordered-bigram feature, squashed into [0, 1).

    For each pair: `raw = BM25(query unigrams) + bigram_weight * BM25(query's adjacent word pairs)`, where the
    document statistics (document frequency for idf, average length) are taken over the distinct documents of the
    request: a term found in every document of the batch ("the", "of", "capital" among four passages about
    capitals) carries little weight, which is how idf down-weights query stopwords without a language-specific
    stopword list. The ordered-bigram term is the "sequential dependence" idea (Metzler & Croft, 2005): a passage
    containing the query's phrases in order ("capital of the united states") beats one that merely repeats single
    query words. The score is `raw / (1 + raw)`: 0 for no overlap, monotone in `raw`, never 1.

    A pair's score therefore depends on the other documents in the same request (as idf does in any search
    engine); scoring the same request twice gives the same answer.
    """

    name = "lexical (BM25 + ordered bigrams over the request's documents; no model weights)"

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, bigram_weight: float = 1.0) -> None:
        self.k1 = k1
        self.b = b
        self.bigram_weight = bigram_weight

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        return self.score_in_turns(pairs, contextlib.nullcontext)  # on its own: no turns to wait for

    def score_in_turns(self, pairs: Sequence[Pair], turn: Turn, *, chunk: int = 64) -> list[float]:
        """`score`, `chunk` documents or pairs per turn (see Scorer)."""
        docs: dict[str, tuple[Counter[str], Counter[tuple[str, str]], int]] = {}
        distinct = list(dict.fromkeys(doc for _, doc in pairs))
        for start in range(0, len(distinct), chunk):
            with turn():
                for doc in distinct[start : start + chunk]:
                    words = tokenize(doc)
                    docs[doc] = (Counter(words), Counter(_bigrams(words)), len(words))
        with turn():
            n_docs = len(docs)
            avg_len = (sum(length for _, _, length in docs.values()) / n_docs) if n_docs else 0.0
            df_uni = _document_frequency(uni for uni, _, _ in docs.values())
            df_bi = _document_frequency(bi for _, bi, _ in docs.values())
        # Each distinct query is tokenized once: the TEI and query-documents contracts repeat one query per pair.
        queries: dict[str, tuple[set[str], set[tuple[str, str]]]] = {}
        out = []
        for start in range(0, len(pairs), chunk):
            with turn():
                for query, doc in pairs[start : start + chunk]:
                    terms = queries.get(query)
                    if terms is None:
                        q_words = tokenize(query)
                        terms = queries[query] = (set(q_words), set(_bigrams(q_words)))
                    uni, bi, length = docs[doc]
                    norm = self.k1 * (1 - self.b + self.b * length / avg_len) if avg_len else self.k1
                    raw = self._bm25(terms[0], uni, df_uni, n_docs, norm)
                    raw += self.bigram_weight * self._bm25(terms[1], bi, df_bi, n_docs, norm)
                    out.append(raw / (1.0 + raw))
        return out

    def _bm25(self, terms: set[Any], tf: Counter[Any], df: Counter[Any], n_docs: int, norm: float) -> float:
        total = 0.0
        for term in terms:
            f = tf.get(term, 0)
            if f:
                idf = math.log(1.0 + (n_docs - df[term] + 0.5) / (df[term] + 0.5))
                total += idf * f * (self.k1 + 1) / (f + norm)
        return total


def _bigrams(words: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(words, words[1:], strict=False))


def _document_frequency(counters: Iterable[Counter[Any]]) -> Counter[Any]:
    df: Counter[Any] = Counter()
    for c in counters:
        df.update(c.keys())
    return df
