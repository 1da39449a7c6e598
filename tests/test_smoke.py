"""The example config validates and renders through the real CLI, in-process."""

import io

from os_rerank.cli import main


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
