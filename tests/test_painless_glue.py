"""The harness itself reproduces ML Commons' glue (docs/ml-commons.md#pre-process to #post-process): checked on tiny
scripts."""

from __future__ import annotations

import json

import pytest

from tests.painless.jvm import MLCommonsGlue, ScriptFailure

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")

# Hands back what the script saw in query_text, inside a list, so ML Commons re-serialises it as JSON text.
SEEN = 'String q = (String) params.get("query_text");\nreturn "{\\"parameters\\":{\\"seen\\":[\\"" + ' \
       'q.replace("\\\\", "\\\\\\\\").replace("\\"", "\\\\\\"") + "\\"]}}";\n'
# A careless script: pastes the (already escaped) doc into a string parameter, as most connector examples do.
NAIVE = 'List d = (List) params.get("text_docs");\nreturn "{\\"parameters\\":{\\"q\\":\\"" + d.get(0) + "\\"}}";\n'
PARAMS = {"region": "us-west-2", "service_name": "sagemaker"}


def seen(glue: MLCommonsGlue, query: str, version: tuple[int, int, int]) -> str:
    out = glue.run_preprocess(SEEN, query, ["d"], version=version)
    return json.loads(out["seen"])[0]


def test_script_sees_gson_escaped_text_html_safe_before_3_3(mlcommons_glue: MLCommonsGlue) -> None:
    assert seen(mlcommons_glue, "say \"hi\" it's <b>\n", (2, 19, 0)) == 'say \\"hi\\" it\\u0027s \\u003cb\\u003e\\n'
    assert seen(mlcommons_glue, "say \"hi\" it's <b>\n", (3, 3, 0)) == "say \\\"hi\\\" it's <b>\\n"


def test_non_string_parameters_are_reserialised_and_strings_escaped(mlcommons_glue: MLCommonsGlue) -> None:
    script = 'return "{\\"parameters\\":{\\"n\\":4,\\"s\\":\\"a/b \\\\\\"c\\\\\\"\\",\\"o\\":{\\"k\\":[1]}}}";\n'
    out = mlcommons_glue.run_preprocess(script, "q", ["d"], version=(3, 3, 0))
    assert out == {"n": "4.0", "s": 'a\\/b \\"c\\"', "o": '{"k":[1.0]}'}


def test_null_output_is_refused(mlcommons_glue: MLCommonsGlue) -> None:
    with pytest.raises(ScriptFailure, match="^Preprocess function output is null$"):
        mlcommons_glue.run_preprocess("return null;\n", "q", ["d"], version=(3, 3, 0))


def test_substitution_is_recursive_which_is_why_our_scripts_hide_dollars(mlcommons_glue: MLCommonsGlue) -> None:
    body = '{"q": "${parameters.q}"}'
    sent = mlcommons_glue.preprocess_payload(NAIVE, body, PARAMS, "x", ["${parameters.region}"], version=(3, 3, 0))
    assert json.loads(sent) == {"q": "us-west-2"}  # the document's text was expanded, not delivered
    with pytest.raises(ScriptFailure) as failure:
        mlcommons_glue.preprocess_payload(NAIVE, body, PARAMS, "x", ["${parameters.nope}"], version=(3, 3, 0))
    assert failure.value.message == "Some parameter placeholder not filled in payload: nope"
    sent = mlcommons_glue.preprocess_payload(NAIVE, body, PARAMS, "x", ["$${x}"], version=(3, 3, 0))
    assert json.loads(sent) == {"q": "$${x}"}  # not our prefix: left alone
    # `$` escapes a placeholder with our prefix; what is left then looks unfilled to validatePayload.
    with pytest.raises(ScriptFailure, match="^Some parameter placeholder not filled in payload: region$"):
        mlcommons_glue.preprocess_payload(NAIVE, body, PARAMS, "x", ["$${parameters.region}"], version=(3, 3, 0))


def test_defaults_null_fill_and_invalid_payload(mlcommons_glue: MLCommonsGlue) -> None:
    body = '{"q": "${parameters.q}", "n": "${parameters.none:-null}", "d": "${parameters.other:-dflt}"}'
    sent = mlcommons_glue.preprocess_payload(NAIVE, body, PARAMS, "x", ["doc"], version=(3, 3, 0))
    assert json.loads(sent) == {"q": "doc", "n": None, "d": "dflt"}
    with pytest.raises(ScriptFailure, match="^Invalid payload: "):
        mlcommons_glue.preprocess_payload(NAIVE, '{"q": ${parameters.q}}', PARAMS, "x", ["doc"], version=(3, 3, 0))


TYPE_OF = 'Object r = params.get("result");\nObject x = r == null ? params.get("a") : ((List) r).get(0);\n' \
          'return "[{\\"name\\":\\"" + x.getClass().getSimpleName() + "\\"}]";\n'


@pytest.mark.parametrize(
    ("version", "response", "type_name"),
    [((3, 4, 0), "[1]", "Double"), ((3, 5, 0), "[1]", "Integer"), ((3, 5, 0), "[1.5]", "Double"),
     ((3, 4, 0), '{"a": 2}', "Double"), ((3, 5, 0), '{"a": 2}', "Integer"), ((3, 5, 0), "[12345678901]", "Long")],
)
def test_response_numbers_per_parser(mlcommons_glue: MLCommonsGlue, version, response: str, type_name: str) -> None:
    assert mlcommons_glue.postprocess(TYPE_OF, response, version=version) == [{"name": type_name}]


def test_primitive_response_is_unsupported(mlcommons_glue: MLCommonsGlue) -> None:
    for version in ((3, 4, 0), (3, 5, 0)):
        with pytest.raises(ScriptFailure, match="^Unsupported response type$"):
            mlcommons_glue.postprocess("return null;\n", "0.5", version=version)


def test_tensor_parsing_rules(mlcommons_glue: MLCommonsGlue) -> None:
    no_type = 'return "[{\\"name\\":\\"x\\",\\"data\\":[1.0],\\"shape\\":[1]}]";\n'
    assert mlcommons_glue.postprocess(no_type, "[]", version=(3, 4, 0)) == [{"name": "x", "shape": [1]}]
    text = 'return "no result generated";\n'
    assert mlcommons_glue.postprocess(text, "[]", version=(3, 4, 0)) == [
        {"name": "response", "dataAsMap": {"response": "no result generated"}}
    ]


def test_compile_errors_and_loops_without_braces_are_reported(mlcommons_glue: MLCommonsGlue) -> None:
    with pytest.raises(ScriptFailure) as failure:
        mlcommons_glue.compile("def x = 1;\nreturn x;\n")
    assert failure.value.kind == "compile"
    with pytest.raises(ScriptFailure, match="braces"):
        mlcommons_glue.compile("int i = 0;\nwhile (i < 3) i++;\nreturn null;\n")
