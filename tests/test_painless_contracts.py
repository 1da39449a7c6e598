"""The shipped Painless scripts, run inside ML Commons' glue (tests/painless/): what the endpoint receives, what
neural-search gets back, adversarial text, the loop budget, and the tutorial's double escaping."""

from __future__ import annotations

import json
import re

import pytest

from os_rerank.contracts import CONTRACT_NAMES, CONTRACTS, REQUEST_BODY
from tests.painless.jvm import MLCommonsGlue, ScriptFailure
from tests.painless.support import (
    ADVERSARIAL,
    CONNECTOR_PARAMETERS,
    DATA,
    POST_VERSIONS,
    PRE_VERSIONS,
    endpoint_answer,
    f32,
    scripts,
    similarity_tensors,
    strict_loads,
)

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")


def payload(glue: MLCommonsGlue, name: str, query: str, docs: list[str], version: tuple[int, int, int]) -> str:
    pre, _post = scripts(CONTRACTS[name])
    return glue.preprocess_payload(pre, REQUEST_BODY, CONNECTOR_PARAMETERS, query, docs, version=version)


@pytest.mark.parametrize("version", PRE_VERSIONS, ids=lambda v: "gson-" + ".".join(map(str, v)))
@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_endpoint_receives_exactly_build_request(mlcommons_glue: MLCommonsGlue, name: str, version) -> None:
    query, docs = "what is painless?", ["A scripting language.", "A dentist's promise."]
    assert strict_loads(payload(mlcommons_glue, name, query, docs, version)) == CONTRACTS[name].build_request(
        query, docs
    )


@pytest.mark.parametrize("version", PRE_VERSIONS, ids=lambda v: "gson-" + ".".join(map(str, v)))
@pytest.mark.parametrize("name", CONTRACT_NAMES)
@pytest.mark.parametrize("query", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_text_arrives_intact(mlcommons_glue: MLCommonsGlue, name: str, version, query: str) -> None:
    sent = payload(mlcommons_glue, name, query, ADVERSARIAL, version)
    assert strict_loads(sent) == CONTRACTS[name].build_request(query, ADVERSARIAL)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_script_hands_ml_commons_one_json_text_parameter(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    pre, _post = scripts(CONTRACTS[name])
    params = mlcommons_glue.run_preprocess(pre, "${parameters.body}", ["$${x}", "a\"b"], version=(2, 19, 0))
    # `no_escape_params` keeps `body` verbatim on 3.0+ whatever order ML Commons checks in (see the end of this file).
    assert sorted(params) == ["body", "no_escape_params"] and params["no_escape_params"] == "body"
    # Kept unescaped because it is a JSON object, and free of `$`, so substitution and validation never see `${`.
    assert "$" not in params["body"]
    assert strict_loads(params["body"]) == CONTRACTS[name].build_request("${parameters.body}", ["$${x}", 'a"b'])


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_topk_stays_an_integer(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    sent = payload(mlcommons_glue, name, "q", ["a", "b", "c"], (3, 3, 0))
    assert "4.0" not in sent and "3.0" not in sent


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_empty_document_list_is_refused_by_ml_commons(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    with pytest.raises(ScriptFailure) as failure:
        payload(mlcommons_glue, name, "q", [], (3, 3, 0))
    assert failure.value.message == "No text documents were provided"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_a_large_page_stays_under_the_loop_budget(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    docs = [f"{i:04d} " + "long document text ✓ " * 476 for i in range(200)]
    assert {len(d) for d in docs} == {10_001}
    contract = CONTRACTS[name]
    assert strict_loads(payload(mlcommons_glue, name, "q", docs, (3, 3, 0))) == contract.build_request("q", docs)
    scores = [f32(i / 256) for i in range(200)]
    _pre, post = scripts(contract)
    answer = json.dumps(endpoint_answer(contract, "q", docs, scores, seed=7))
    assert mlcommons_glue.postprocess(post, answer, version=(3, 5, 0)) == similarity_tensors(scores)


CHAR_LOOP = """List docs = (List) params.get("text_docs");
int count = 0;
for (int i = 0; i < docs.size(); i++) {
  String d = (String) docs.get(i);
  for (int k = 0; k < d.length(); k++) {
    count = count + 1;
  }
}
return "{\\"parameters\\":{\\"count\\":" + count + "}}";
"""


def test_a_per_character_loop_trips_the_loop_budget(mlcommons_glue: MLCommonsGlue) -> None:
    small = mlcommons_glue.run_preprocess(CHAR_LOOP, "q", ["abc", "de"], version=(3, 3, 0))
    assert small == {"count": "5.0"}  # Gson parses 5 as a Double; gson.toJson writes it back as 5.0
    docs = ["x" * 10_000] * 200
    with pytest.raises(ScriptFailure) as failure:
        mlcommons_glue.run_preprocess(CHAR_LOOP, "q", docs, version=(3, 3, 0))
    assert failure.value.message == "The maximum number of statements that can be executed in a loop has been reached."


SCORES = [f32(x) for x in (0.125, -3.5, 0.0, 1e-7, 42.0, 0.3, -0.7, 7.5e5)]


@pytest.mark.parametrize("version", POST_VERSIONS, ids=lambda v: "parser-" + ".".join(map(str, v)))
@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_post_process_returns_scores_in_input_order(mlcommons_glue: MLCommonsGlue, name: str, version) -> None:
    contract = CONTRACTS[name]
    docs = [f"doc {i}" for i in range(len(SCORES))]
    _pre, post = scripts(contract)
    for seed in range(3):
        answer = json.dumps(endpoint_answer(contract, "q", docs, SCORES, seed=seed))
        assert mlcommons_glue.postprocess(post, answer, version=version) == similarity_tensors(SCORES)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_integral_scores_from_jackson_still_count(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    contract = CONTRACTS[name]
    answer = endpoint_answer(contract, "q", ["a", "b"], [1.0, 0.0], seed=1)
    text = json.dumps(answer).replace("1.0", "1").replace("0.0", "0")  # ints: Integer under Jackson (3.5+)
    _pre, post = scripts(contract)
    assert mlcommons_glue.postprocess(post, text, version=(3, 5, 0)) == similarity_tensors([1.0, 0.0])


@pytest.mark.parametrize("version", POST_VERSIONS, ids=lambda v: "parser-" + ".".join(map(str, v)))
@pytest.mark.parametrize("name", CONTRACT_NAMES)
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_finite_scores_fail_never_reach_output(mlcommons_glue: MLCommonsGlue, name: str, version, bad) -> None:
    contract = CONTRACTS[name]
    answer = endpoint_answer(contract, "q", ["a", "b", "c"], [0.5, 0.25, 0.125], seed=3)
    text = json.dumps(answer).replace("0.25", bad)
    _pre, post = scripts(contract)
    with pytest.raises(ScriptFailure) as failure:
        mlcommons_glue.postprocess(post, text, version=version)
    if bad.endswith("Infinity") or bad == "NaN":
        if version < (3, 5, 0):
            # Gson's lenient JsonParser reads a bare NaN / Infinity as the *string* "NaN": the script's number
            # check refuses it. Jackson (3.5+) refuses the response before any script runs.
            assert failure.value.kind == "script"
            assert re.search(r"os-rerank.*(no numeric|not a number|needs a numeric)", failure.value.message)
        else:
            assert failure.value.kind == "mlcommons"
    else:
        # An overflowing literal is a number to both parsers and becomes an infinite double: the script's
        # finiteness check is what stops it.
        assert failure.value.kind == "script"
        assert "not a finite number" in failure.value.message


@pytest.mark.parametrize("name", sorted({"query-documents-topk", "tei-rerank"}))
@pytest.mark.parametrize(
    "answer",
    [
        [{"index": 0, "score": 0.5}],
        [{"index": 0, "score": 0.5}, {"index": 0, "score": 0.25}],
        [{"index": 0, "score": 0.5}, {"index": 2, "score": 0.25}],
        [{"index": 0.5, "score": 0.5}, {"index": 1, "score": 0.25}],
        [{"index": 0, "score": "0.5"}, {"index": 1, "score": 0.25}],
    ],
    ids=["one-missing", "duplicate", "out-of-range", "fractional", "string-score"],
)
def test_ranked_post_refuses_a_partial_or_shifted_ranking(mlcommons_glue: MLCommonsGlue, name: str, answer) -> None:
    _pre, post = scripts(CONTRACTS[name])
    if len(answer) == 1:  # the script cannot know n; one result for one index 0 is a complete answer
        assert mlcommons_glue.postprocess(post, json.dumps(answer), version=(3, 4, 0)) == similarity_tensors([0.5])
        return
    with pytest.raises(ScriptFailure):
        mlcommons_glue.postprocess(post, json.dumps(answer), version=(3, 4, 0))


# --- the tutorial's pre-process double-escapes (docs/ml-commons.md#escaping) ------------------------------------------

TUTORIAL_BODY = json.loads((DATA / "tutorial" / "cross-encoder-connector.json").read_text(encoding="utf-8"))[
    "actions"
][0]["request_body"]
TUTORIAL_PRE = (DATA / "tutorial" / "pre-process.transcribed.painless").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("version", "original", "tutorial_delivers"),
    [
        ((2, 19, 0), 'say "hi"', 'say \\"hi\\"'),
        ((3, 3, 0), 'say "hi"', 'say \\"hi\\"'),
        ((3, 3, 0), "line1\nline2", "line1\\nline2"),
        ((3, 3, 0), "tab\there", "tab\\\\there"),
        ((3, 3, 0), "back\\slash", "back\\\\slash"),
        ((2, 19, 0), "don't <b>", "don\\u0027t \\u003cb\\u003e"),
        ((3, 3, 0), "don't <b>", "don't <b>"),
    ],
)
def test_tutorial_double_escapes_where_ours_delivers_the_original(
    mlcommons_glue: MLCommonsGlue, version, original: str, tutorial_delivers: str
) -> None:
    sent = mlcommons_glue.preprocess_payload(
        TUTORIAL_PRE, TUTORIAL_BODY, CONNECTOR_PARAMETERS, original, [original], version=version
    )
    assert strict_loads(sent) == {"inputs": [{"text": tutorial_delivers, "text_pair": tutorial_delivers}]}
    ours = payload(mlcommons_glue, "hf-text-classification", original, [original], version)
    assert strict_loads(ours) == {"inputs": [{"text": original, "text_pair": original}]}


def test_tutorial_transcription_is_in_the_subset() -> None:
    from tests.painless.lint import lint_source

    assert [str(v) for v in lint_source(TUTORIAL_PRE, "tests/data/tutorial/pre-process.transcribed.painless")] == []


# --- no_escape_params (ML Commons 3.0+) ------------------------------------------------------------------------------
# The whole request body travels as one parameter, `body`, which ML Commons keeps verbatim because it is JSON
# (ConnectorUtils.escapeRemoteInferenceInputData: `isJson(value)` comes first). An upstream proposal
# (ml-commons#5070, PR #5075) would consult `no_escape_params` first and escape JSON values not listed there, which
# would turn our body into an escaped string. Our scripts list `body` in `no_escape_params`, which 3.0+ honours in
# either order and 2.19 ignores (it has no such parameter; the real-node exactness tests run with it).


ORDERS = [((2, 19, 1), "released"), ((3, 0, 0), "released"), ((3, 0, 0), "noescape-first"),
          ((3, 3, 0), "noescape-first"), ((3, 8, 0), "released"), ((3, 8, 0), "noescape-first")]


@pytest.mark.parametrize(("version", "order"), ORDERS, ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple)
                         else v)
@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_body_survives_either_escaping_order(mlcommons_glue: MLCommonsGlue, name: str, version, order: str) -> None:
    pre, _post = scripts(CONTRACTS[name])
    sent = mlcommons_glue.preprocess_payload(pre, REQUEST_BODY, CONNECTOR_PARAMETERS, ADVERSARIAL[0], ADVERSARIAL,
                                             version=version, escape_order=order)
    assert strict_loads(sent) == CONTRACTS[name].build_request(ADVERSARIAL[0], ADVERSARIAL)


def test_without_no_escape_params_the_proposed_order_would_break_the_body(mlcommons_glue: MLCommonsGlue) -> None:
    """Why the scripts list `body`: the same script minus that entry fails under the proposed order."""
    pre, _post = scripts(CONTRACTS["pairs-scores"])
    bare = pre.replace(',\\"no_escape_params\\":\\"body\\"', "")
    assert bare != pre
    with pytest.raises(ScriptFailure, match="Invalid payload"):
        mlcommons_glue.preprocess_payload(bare, REQUEST_BODY, CONNECTOR_PARAMETERS, "q", ["d"], version=(3, 3, 0),
                                          escape_order="noescape-first")
    sent = mlcommons_glue.preprocess_payload(bare, REQUEST_BODY, CONNECTOR_PARAMETERS, "q", ["d"], version=(3, 3, 0))
    assert strict_loads(sent) == {"pairs": [["q", "d"]]}  # fine with the order released today


# --- compaction (resources.compact_painless) ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_the_compacted_scripts_do_exactly_what_the_written_ones_do(mlcommons_glue: MLCommonsGlue, name: str) -> None:
    """The cluster runs the compacted scripts (ML Commons' per-call regex costs the square of a script's length)."""
    sent, written = scripts(CONTRACTS[name]), scripts(CONTRACTS[name], sent=False)
    assert all(len(s) < len(w) * 0.8 and "\n" not in s for s, w in zip(sent, written, strict=True))
    for query in ADVERSARIAL[:8]:
        outputs = [mlcommons_glue.preprocess_payload(pre, REQUEST_BODY, CONNECTOR_PARAMETERS, query, ADVERSARIAL,
                                                     version=(2, 19, 1)) for pre, _ in (sent, written)]
        assert outputs[0] == outputs[1]
    answer = json.dumps(endpoint_answer(CONTRACTS[name], "q", ADVERSARIAL, [0.5] * len(ADVERSARIAL), seed=1))
    tensors = [mlcommons_glue.postprocess(post, answer, version=(2, 19, 1)) for _, post in (sent, written)]
    assert tensors[0] == tensors[1]


def test_compaction_keeps_strings_and_separates_what_must_stay_apart() -> None:
    from os_rerank.resources import compact_painless

    source = 'int a = 1; // note "x"\n/* block */ a = a - -1;\nString s = "a  //  b /* c */";\nreturn s;\n'
    assert compact_painless(source) == 'int a=1;a=a- -1;String s="a  //  b /* c */";return s;'
    assert compact_painless(compact_painless(source)) == compact_painless(source)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_every_script_sent_opens_with_the_marker_that_skips_the_quadratic_check(name: str) -> None:
    """ML Commons skips its slow escape() scan when a script seems to define escape(); ours define and call none."""
    import re

    from os_rerank.resources import ESCAPE_MARKER

    contains_escape_method = re.compile(r"String\s+escape\s*\(\s*(def|String)\s+.*?\)\s*\{?")  # StringUtils, 2.19.1
    for script in scripts(CONTRACTS[name]):
        assert script.startswith(ESCAPE_MARKER)
        match = contains_escape_method.search(script)
        assert match is not None and match.end() <= len(ESCAPE_MARKER)  # found inside the marker, at once
        assert re.search(r"\bescape\s*\(", script[len(ESCAPE_MARKER):]) is None
