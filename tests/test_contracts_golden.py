"""Golden files per contract (tests/data/contracts/<contract>/), run through all three consumers: the validator's
codec (build_request / parse_response), the local endpoint's codec (parse_request / build_response), and the
connector's Painless scripts inside ML Commons' glue. The case has Korean, Hindi, quotes, backslashes, literal
escape sequences, control characters, U+2028 and a `${parameters.body}` placeholder in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from os_rerank.contracts import CONTRACT_NAMES, CONTRACTS, REQUEST_BODY, ScoreRequest
from tests.painless.jvm import MLCommonsGlue
from tests.painless.support import (
    CONNECTOR_PARAMETERS,
    POST_VERSIONS,
    PRE_VERSIONS,
    scripts,
    similarity_tensors,
    strict_loads,
)

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")

GOLDEN = Path(__file__).resolve().parent / "data" / "contracts"


def load(*parts: str) -> Any:
    return strict_loads(GOLDEN.joinpath(*parts).read_text(encoding="utf-8"))


CASE = load("case.json")


def test_every_contract_has_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == sorted(CONTRACT_NAMES)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_golden_parity(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = CONTRACTS[name]
    request, response, scores = load(name, "request.json"), load(name, "response.json"), load(name, "scores.json")
    query, docs = CASE["query"], CASE["docs"]
    assert scores == CASE["scores"]

    # 1. the validator's side
    assert contract.build_request(query, docs) == request
    assert contract.parse_response(response, len(docs)) == scores

    # 2. the local endpoint's side
    parsed = contract.parse_request(request)
    assert parsed.pairs == tuple((query, d) for d in docs)
    answer = contract.build_response(ScoreRequest(parsed.pairs, topk=parsed.topk or len(docs)), scores)
    assert answer == response

    # 3. the connector's Painless scripts, as ML Commons runs them
    pre, post = scripts(contract)
    for version in PRE_VERSIONS:
        sent = mlcommons_glue.preprocess_payload(pre, REQUEST_BODY, CONNECTOR_PARAMETERS, query, docs, version=version)
        assert strict_loads(sent) == request
    for version in POST_VERSIONS:
        tensors = mlcommons_glue.postprocess(post, json.dumps(response, ensure_ascii=False), version=version)
        assert tensors == similarity_tensors(scores)
