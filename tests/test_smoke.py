"""The example config validates and renders through the real CLI, in-process."""

import io

import pytest

from os_rerank.cli import main

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_example_config_validates() -> None:
    code, out, err = run("validate", "--config", "config.example.yaml")
    assert (code, err) == (0, "")
    assert out.startswith("config.example.yaml: ok")


def test_example_config_renders_every_request() -> None:
    code, out, err = run("render", "--config", "config.example.yaml")
    assert (code, err) == (0, "")
    for what in ("# connector", "# model_group", "# model", "# index", "# documents", "# pipeline"):
        assert what + "\n" in out


def test_an_unexpected_error_is_one_redacted_line_not_a_traceback(monkeypatch) -> None:
    import os_rerank.cli_commands as cli_commands

    def boom(args, env):
        env.secrets.add("s3cret-value-123")
        raise RuntimeError("failed with s3cret-value-123")

    monkeypatch.setattr(cli_commands, "cmd_validate", boom)
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", "--config", "config.example.yaml"], environ={}, stdout=out, stderr=err)
    assert (code, out.getvalue()) == (70, "")
    assert err.getvalue() == (
        "os-rerank: error: unexpected RuntimeError: failed with ***\n"
        "os-rerank: error: this is a bug in os-rerank; OS_RERANK_DEBUG=1 shows the traceback\n"
    )
    err = io.StringIO()
    main(["validate", "--config", "config.example.yaml"], environ={"OS_RERANK_DEBUG": "1"}, stdout=out, stderr=err)
    assert err.getvalue().startswith("Traceback (most recent call last):") and "s3cret-value-123" not in err.getvalue()
