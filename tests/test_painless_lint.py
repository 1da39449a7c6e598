"""The Painless-subset linter: every rule fires on a bad snippet, and every shipped script passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.painless.lint import PAINLESS_DIR, lint_file, lint_source

pytestmark = pytest.mark.painless  # layer 2 of the suite (README "Tests")

OK_TAIL = '\nreturn "{}";\n'


def rules(src: str) -> list[str]:
    return [v.rule for v in lint_source(src, "painless/x.painless")]


SHIPPED = sorted(PAINLESS_DIR.glob("*.painless"))


def test_there_are_twelve_shipped_scripts() -> None:
    # 7 for the rerank contracts, 5 for the embedding ones (os_rerank/embedding_contracts.py).
    assert len(SHIPPED) == 12


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_script_passes(path: Path) -> None:
    assert [str(v) for v in lint_file(path)] == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_compacted_script_the_cluster_runs_passes_too(path: Path) -> None:
    from os_rerank.resources import script_as_sent

    sent = script_as_sent(path.read_text(encoding="utf-8"))
    assert [str(v) for v in lint_source(sent, f"{path.name} (compacted)")] == []


@pytest.mark.parametrize(
    ("rule", "snippet"),
    [
        ("no-def", 'def q = params.get("query_text");'),
        ("no-var", 'var q = params.get("query_text");'),
        ("params-get", "String q = params.query_text;"),
        ("params-get", 'String q = params["query_text"];'),
        ("string-escape", 'String nl = "\\n";'),
        ("string-escape", 'String t = "a\\tb";'),
        ("string-escape", 'String raw = "a\tb";'),
        ("unicode-escape", 'String d = "\\u0024";'),
        ("no-placeholder", '// region is ${parameters.region}\nString r = "x";'),
        ("unicode-escape", "// a comment with \\u000a in it"),
        ("single-quote", "String s = 'x';"),
        ("no-object-eq", 'String q = (String) params.get("q");\nif (q == "x") {\n  q = "y";\n}'),
        ("no-object-eq", 'if (params.get("q") != "x") {\n  int a = 1;\n}'),
        ("no-object-eq", 'String a = "1";\nString b = "2";\nboolean same = a == b;'),
        ("no-object-eq", 'Map m = (Map) params.get("m");\nboolean same = "k" == m.get("k");'),
        ("no-generics", 'List<String> docs = (List<String>) params.get("text_docs");'),
        ("allowlist", 'String q = ((String) params.get("q")).toUpperCase();'),
        ("allowlist", 'String q = String.format("%s", "x");'),
        ("allowlist", "StringBuilder b = new StringBuilder(64);"),
        ("allowlist", "Map m = new HashMap();"),
        ("loop-braces", 'List d = (List) params.get("d");\nfor (int i = 0; i < d.size(); i++) d.get(i);'),
        ("loop-braces", "int i = 0;\nwhile (i < 3) i++;"),
        ("no-function", 'String esc(String s) {\n  return s;\n}'),
    ],
)
def test_rule_fires(rule: str, snippet: str) -> None:
    assert rule in rules(snippet + OK_TAIL)


def test_missing_final_return_fires() -> None:
    assert rules('String q = "x";\n') == ["final-return"]
    assert "final-return" in rules('if (true) {\n  return "a";\n}\n')


def test_message_names_file_line_rule_and_why() -> None:
    (violation,) = lint_source('String a = "x";\ndef b = a;\nreturn b;\n', "painless/x.painless")
    assert str(violation).startswith("painless/x.painless:2: no-def: ")


@pytest.mark.parametrize(
    "snippet",
    [
        'String d = "\\\\u0024";',  # escaped backslash: javac sees \\ then u
        'String q = "say \\"hi\\" \\\\";',
        "// don't worry: quotes in comments are fine",
        'Object r = params.get("result");\nif (r == null) {\n  r = "x";\n}',
        "int i = 0;\nint n = 3;\nboolean same = i == n;",
        "double w = 1.0;\nint k = (int) w;\nboolean b = w != k;",
        'StringBuilder b = new StringBuilder();\nStringBuilder c = new StringBuilder("[");',
        "double[] s = new double[3];\nboolean x = Double.isNaN(s[0]) || Double.isInfinite(s[0]);",
        'String a = "x";\nboolean b = a.equals("y");',
        "int i = 0;\ndo {\n  i++;\n} while (i < 3);",
    ],
)
def test_allowed_code_passes(snippet: str) -> None:
    assert rules(snippet + OK_TAIL) == []
