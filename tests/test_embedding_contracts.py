"""The embedding contracts (os_rerank/embedding_contracts.py) through their three consumers: the validator's codec
(build_request / parse_response), the local endpoint's codec (parse_request / build_response) and the connector's
Painless scripts inside ML Commons' glue, with a text-docs input as neural-search sends it (only `text_docs`).
Golden files per contract under tests/data/embedding_contracts/; adversarial text; property tests; bad answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from os_rerank.contracts import ContractError
from os_rerank.embedding_contracts import (
    EMBEDDING_CONTRACT_NAMES,
    EMBEDDING_CONTRACTS,
    decode_texts,
    get_embedding_contract,
    mean_pool,
)
from tests.painless.jvm import MLCommonsGlue, ScriptFailure
from tests.painless.support import (
    ADVERSARIAL,
    CONNECTOR_PARAMETERS,
    POST_VERSIONS,
    PRE_VERSIONS,
    f32,
    scripts,
    strict_loads,
)

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")

GOLDEN = Path(__file__).resolve().parent / "data" / "embedding_contracts"


def load(*parts: str) -> Any:
    return strict_loads(GOLDEN.joinpath(*parts).read_text(encoding="utf-8"))


CASE = load("case.json")


def tensors(vectors: list[list[float]]) -> list[dict[str, Any]]:
    """What neural-search reads: one FLOAT32 "sentence_embedding" per text, in input order."""
    return [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [len(v)], "data": v} for v in vectors]


def sent(glue: MLCommonsGlue, name: str, texts: list[str], version: tuple[int, int, int] = (2, 19, 1)) -> Any:
    contract = EMBEDDING_CONTRACTS[name]
    pre, _post = scripts(contract)  # type: ignore[arg-type]  # the same two attributes as a rerank Contract
    payload = glue.preprocess_payload(pre, contract.request_body, {**CONNECTOR_PARAMETERS,
                                      **contract.connector_parameters}, None, texts, version=version)
    return strict_loads(payload)


def post(glue: MLCommonsGlue, name: str, answer: Any, version: tuple[int, int, int] = (3, 4, 0)) -> Any:
    _pre, script = scripts(EMBEDDING_CONTRACTS[name])  # type: ignore[arg-type]
    return glue.postprocess(script, json.dumps(answer, ensure_ascii=False), version=version)


def test_every_contract_has_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == sorted(EMBEDDING_CONTRACT_NAMES)


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_golden_parity(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = EMBEDDING_CONTRACTS[name]
    request, response = load(name, "request.json"), load(name, "response.json")
    texts, vectors = CASE["texts"], CASE["vectors"]
    # 1. the validator's side (and setup's dimension probe)
    assert contract.build_request(texts) == request
    assert contract.parse_response(response, len(texts)) == vectors
    # 2. the local endpoint's side: what it reads, and an answer the validator reads back exactly
    assert contract.parse_request(request) == texts
    assert decode_texts(contract, json.dumps(request, ensure_ascii=False).encode()) == texts
    assert contract.parse_response(contract.build_response(vectors), len(texts)) == vectors
    # 3. the connector's scripts, as ML Commons runs them for neural-search's text-docs input
    for version in PRE_VERSIONS:
        assert sent(mlcommons_glue, name, texts, version) == request
    for version in POST_VERSIONS:
        assert post(mlcommons_glue, name, response, version) == tensors(vectors)


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_adversarial_text_arrives_intact(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    for version in PRE_VERSIONS:
        assert sent(mlcommons_glue, name, ADVERSARIAL, version) == EMBEDDING_CONTRACTS[name].build_request(ADVERSARIAL)


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_script_hands_ml_commons_one_json_text_parameter(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    pre, _post = scripts(EMBEDDING_CONTRACTS[name])  # type: ignore[arg-type]
    params = mlcommons_glue.run_preprocess(pre, None, ["$${x}", "${parameters.body}"], version=(2, 19, 1))
    assert sorted(params) == ["body", "no_escape_params"] and "$" not in params["body"]


def test_empty_text_list_is_refused_by_ml_commons(mlcommons_glue: MLCommonsGlue) -> None:
    with pytest.raises(ScriptFailure, match="^empty docs$"):
        sent(mlcommons_glue, "vector-embedding", [])


def test_connector_batches_where_the_script_allows_it() -> None:
    assert EMBEDDING_CONTRACTS["vector-embedding"].connector_parameters == {"input_docs_processed_step_size": "16"}
    assert EMBEDDING_CONTRACTS["hf-feature-extraction"].connector_parameters == {}  # one text per call


def test_feature_extraction_pools_every_shape_it_accepts(mlcommons_glue: MLCommonsGlue) -> None:
    tokens = [[1.0, 2.0], [3.0, -4.0], [0.5, 0.5]]
    mean = [1.5, -0.5]
    for item in (tokens, [tokens], mean, [[1.5, -0.5]]):
        assert mean_pool(item, "x") == mean
        assert post(mlcommons_glue, "hf-feature-extraction", [item, item]) == tensors([mean, mean])


def test_a_long_text_pools_under_the_loop_budget(mlcommons_glue: MLCommonsGlue) -> None:
    item = [[[f32((t * 7 + j) % 13 / 8) for j in range(768)] for t in range(512)]]
    want = [f32(x) for x in mean_pool(item, "x")]
    assert post(mlcommons_glue, "hf-feature-extraction", [item]) == tensors([want])


BAD_ANSWERS = {
    "vector-embedding": [{"scores": []}, {"vector_embedding": [[1.0], [1.0, 2.0]]}, {"vector_embedding": [[]]},
                         {"vector_embedding": [["1"]]}, {"vector_embedding": [1.0]}],
    "hf-feature-extraction": [{"a": 1}, [[1.0], [1.0, 2.0]], [[[1.0, 2.0], [1.0]]], [[]], [[[[1.0]], [[1.0]]]],
                              [["x"]]],
    "tei-embed": [{"a": 1}, [[1.0], [1.0, 2.0]], [[]], [[None]], [1.0]],
}


@pytest.mark.parametrize(("name", "answer"), [(n, a) for n, answers in BAD_ANSWERS.items() for a in answers])
def test_a_malformed_answer_fails_on_both_sides(mlcommons_glue: MLCommonsGlue, name: str, answer: Any) -> None:
    with pytest.raises(ContractError):
        EMBEDDING_CONTRACTS[name].parse_response(answer, 2)
    with pytest.raises(ScriptFailure):
        post(mlcommons_glue, name, answer)


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1e400"])
def test_non_finite_values_never_reach_the_index(mlcommons_glue: MLCommonsGlue, name: str, bad: str) -> None:
    text = json.dumps(EMBEDDING_CONTRACTS[name].build_response([[0.5, 0.25]])).replace("0.25", bad)
    _pre, script = scripts(EMBEDDING_CONTRACTS[name])  # type: ignore[arg-type]
    with pytest.raises(ScriptFailure):
        mlcommons_glue.postprocess(script, text, version=(3, 4, 0))


def test_wrong_count_and_unknown_names_are_contract_errors() -> None:
    with pytest.raises(ContractError, match="1 vectors for 2 texts"):
        EMBEDDING_CONTRACTS["tei-embed"].parse_response([[1.0]], 2)
    with pytest.raises(ContractError, match="known: vector-embedding"):
        get_embedding_contract("nope")
    with pytest.raises(ContractError, match="unknown key"):
        decode_texts(EMBEDDING_CONTRACTS["vector-embedding"], b'{"inputs": ["a"], "x": 1}')
    with pytest.raises(ContractError, match="no texts"):
        decode_texts(EMBEDDING_CONTRACTS["tei-embed"], b'{"inputs": []}')
    assert decode_texts(EMBEDDING_CONTRACTS["tei-embed"], '{"inputs": "one"}') == ["one"]


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
TRICKY = st.text(st.sampled_from(list('"\\/$\'<>&={}[]:-\t\r\n\x00\x1f\x7f\u2028\u2029한😀u0')), max_size=20)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_any_text_reaches_the_endpoint_exactly(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = EMBEDDING_CONTRACTS[name]

    @PROPERTY
    @given(texts=st.lists(st.one_of(TEXT, TRICKY, st.just("${parameters.body}")), min_size=1, max_size=5))
    def roundtrip(texts: list[str]) -> None:
        assert sent(mlcommons_glue, name, texts, PRE_VERSIONS[0]) == contract.build_request(texts)
        assert contract.parse_request(contract.build_request(texts)) == texts

    roundtrip()


@pytest.mark.parametrize("name", EMBEDDING_CONTRACT_NAMES)
def test_any_vectors_come_back_in_input_order(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = EMBEDDING_CONTRACTS[name]
    rows = st.integers(1, 6).flatmap(lambda dim: st.lists(
        st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=dim, max_size=dim),
        min_size=1, max_size=4))

    @PROPERTY
    @given(vectors=rows)
    def in_order(vectors: list[list[float]]) -> None:
        answer = contract.build_response(vectors)
        assert contract.parse_response(answer, len(vectors)) == vectors
        assert post(mlcommons_glue, name, answer, POST_VERSIONS[1]) == tensors(vectors)

    in_order()
