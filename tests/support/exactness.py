"""Texts that break naive escaping, shared by the real-node exactness tests (rerank and embedding)."""

from __future__ import annotations

from hypothesis import strategies as st

# Hand-picked trouble, one kind per document, so a failure names it.
DOCUMENTS = [
    'double quotes: she said "hello" and "bye"',
    "backslashes: C:\\Users\\new\\table, a lone \\ and the two characters \\n and \\u0041",
    "TAB:\there. LF:\nthere. CRLF:\r\nend",
    "apostrophes: it's O'Reilly's",
    "markup: <b>bold</b> & a < b > c &amp; &lt;",
    'Korean: 미국의 수도는 워싱턴 D.C.입니다. "따옴표"와 \\ 백슬래시',
    "Hindi: भारत की राजधानी नई दिल्ली है। हिन्दी",
    "dollars: $5, $$, $HOME, ${parameters.body} and ${parameters.inputs} and $${x}",
    '{"inputs": [{"text": "a JSON document", "text_pair": "\\""}]}',
    "beyond: a control char \u0001, NUL \u0000, an emoji 🙂, a line separator \u2028, \u0085 and \u00e9 vs e\u0301",
]
QUERY = "What is \"the\" capital? It's <Washington> & 서울 \\ दिल्ली\t${parameters.body}"

_SPECIALS = ["${parameters.body}", "${parameters.query_text}", "$${", "${", "\\", '"', "\\\"", "\\u0024", "'",
             "\n", "\r\n", "\t", "\u0000", "\u001f", "\u007f", "\u2028", "\u2029", "\u0085", "\ufeff", "🙂",
             "한국어", "हिन्दी", "{\"a\": [1, 2]}", "]}", "\u202e"]
_CHARS = st.characters(exclude_categories=("Cs",))  # lone surrogates cannot be encoded as UTF-8
_PIECE = st.one_of(st.text(_CHARS, max_size=40), st.sampled_from(_SPECIALS))
TEXTS = st.one_of(
    st.lists(_PIECE, max_size=12).map("".join),
    st.text(_CHARS, min_size=2000, max_size=6000),  # long texts
)
