"""Property tests where text crosses the Painless boundary: any Unicode text survives ML Commons' escaping, our
pre-process script, parameter substitution and JSON; any float32 scores come back in input order.

Text excludes lone surrogates (category Cs): JSON carried as UTF-8 cannot represent them (they are not Unicode
scalar values, so no UTF-8 encoder emits them), hence no real request can contain one.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from os_rerank.contracts import CONTRACT_NAMES, CONTRACTS, REQUEST_BODY
from tests.painless.jvm import MLCommonsGlue
from tests.painless.support import (
    CONNECTOR_PARAMETERS,
    POST_VERSIONS,
    PRE_VERSIONS,
    endpoint_answer,
    scripts,
    similarity_tensors,
    strict_loads,
)

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
# Bias toward the characters that matter: JSON specials, controls, `$` placeholders, HTML-escaped ones, astral.
TRICKY = st.text(st.sampled_from(list('"\\/$\'<>&={}[]:-\t\r\n\x00\x1f\x7f\u2028\u2029한😀u0')), max_size=20)
DOC = st.one_of(TEXT, TRICKY, st.just("${parameters.body}"))
SCORES = st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=8)

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_any_text_reaches_the_endpoint_exactly(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = CONTRACTS[name]
    pre, _post = scripts(contract)

    @PROPERTY
    @given(query=DOC, docs=st.lists(DOC, min_size=1, max_size=5))
    def roundtrip(query: str, docs: list[str]) -> None:
        for version in PRE_VERSIONS:
            sent = mlcommons_glue.preprocess_payload(
                pre, REQUEST_BODY, CONNECTOR_PARAMETERS, query, docs, version=version
            )
            assert strict_loads(sent) == contract.build_request(query, docs)

    roundtrip()


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_any_scores_come_back_in_input_order(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = CONTRACTS[name]
    _pre, post = scripts(contract)

    @PROPERTY
    @given(scores=SCORES, seed=st.integers(0, 2**32 - 1))
    def in_order(scores: list[float], seed: int) -> None:
        docs = [f"d{i}" for i in range(len(scores))]
        answer = json.dumps(endpoint_answer(contract, "q", docs, scores, seed=seed))
        for version in POST_VERSIONS:
            assert mlcommons_glue.postprocess(post, answer, version=version) == similarity_tensors(scores)

    in_order()
