"""Redaction: every known secret, and anything shaped like an AWS key or a secret assignment, prints as ***."""

from __future__ import annotations

import pytest

from os_rerank.output import redact

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

# Built from parts so that no string in the repository looks like a committed AWS key; the redactor must still
# recognise the shape in output it was never told about (an AWS error quoting a key id, say).
KEY_ID = "AKIA" + "Q" * 16
TEMP_KEY_ID = "ASIA" + "7" * 16


def test_known_secrets_are_replaced_longest_first() -> None:
    assert redact("token abcdef and abcdefgh", {"abcdef", "abcdefgh"}) == "token *** and ***"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert redact("a b abc", {"abc"}) == "a b abc"


def test_aws_key_ids_are_redacted_by_shape() -> None:
    text = f"The security token included in the request is invalid ({KEY_ID}, {TEMP_KEY_ID})"
    assert redact(text) == "The security token included in the request is invalid (***, ***)"


def test_secret_assignments_are_redacted_by_shape() -> None:
    assert redact('aws_secret_access_key = wJalrXUtnFEMI/K7MDENG') == "aws_secret_access_key = ***"
    assert redact('{"secret_key": "abc123", "region": "us-west-2"}') == '{"secret_key": "***", "region": "us-west-2"}'
    assert redact("password=hunter2 user=bob") == "password=*** user=bob"


def test_a_shell_reference_to_a_secret_is_not_itself_redacted() -> None:
    """`os-rerank local env` prints how to read the password, never the password: that line must stay readable."""
    line = 'export OPENSEARCH_PASSWORD="$(cat /var/lib/os-rerank/local/secure/admin-password)"'
    assert redact(line) == line
    assert redact('OPENSEARCH_PASSWORD="s3cr3t"') == 'OPENSEARCH_PASSWORD="***"'


def test_the_command_line_prints_only_through_output() -> None:
    """Thin commands: the handlers and the boundary hand results to output.py, which holds every terminal string."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "os_rerank"
    found = []
    for path in sorted(package.glob("cli*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called in ("print", "env.out", "env.err") or called.endswith((".write", "sys.stdout", "sys.stderr")):
                    found.append(f"{path.name}:{node.lineno}: {called}")
    assert found == []
