"""Rendering: golden bodies per contract, version-dependent client_config, Painless embedded verbatim."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from os_rerank.cli import main
from os_rerank.config import load_config
from os_rerank.contracts import CONTRACT_NAMES, REQUEST_BODY, get_contract
from os_rerank.errors import RenderError
from os_rerank.provision.render import (
    KNOWN_AFTER_APPLY,
    client_config_for,
    parse_version,
    render_requests,
)
from os_rerank.resources import read_painless, script_as_sent

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "data" / "golden"
EXAMPLE = ROOT / "config.example.yaml"


def config_for(tmp_path: Path, contract: str, extra: str = ""):
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "contract: hf-text-classification", f"contract: {contract}"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return load_config(path, {})


def rendered_text(config, **kwargs) -> str:
    return "\n".join(f"{r.method} {r.path}\n{r.body}" for r in render_requests(config, **kwargs))


@pytest.mark.parametrize("contract", CONTRACT_NAMES)
def test_golden_render_per_contract(tmp_path: Path, contract: str) -> None:
    text = rendered_text(config_for(tmp_path, contract))
    golden = GOLDEN / f"render-{contract}.txt"
    if os.environ.get("OS_RERANK_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("contract", CONTRACT_NAMES)
def test_painless_is_embedded_verbatim(tmp_path: Path, contract: str) -> None:
    (connector,) = render_requests(config_for(tmp_path, contract), what="connector")
    action = json.loads(connector.body)["actions"][0]
    spec = get_contract(contract)
    assert action["pre_process_function"] == script_as_sent(read_painless(spec.pre_process_file))
    assert action["post_process_function"] == script_as_sent(read_painless(spec.post_process_file))
    assert action["request_body"] == REQUEST_BODY
    assert action["url"] == "http://endpoint:8080/endpoints/os-rerank-cross-encoder/invocations"


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.12.0", None),
        ("2.13.0", {"max_connection": 20, "connection_timeout": 10000, "read_timeout": 30000}),
        ("2.14.0", {"max_connection": 20, "connection_timeout": 10, "read_timeout": 30}),
        (
            "2.15.0",
            {
                "max_connection": 20,
                "connection_timeout": 10,
                "read_timeout": 30,
                "max_retry_times": 3,
                "retry_backoff_policy": "exponential_full_jitter",
                "retry_backoff_millis": 200,
                "retry_timeout_seconds": 30,
            },
        ),
    ],
)
def test_client_config_follows_the_version(tmp_path: Path, version: str, expected) -> None:
    config = config_for(tmp_path, "hf-text-classification")
    assert client_config_for(config, parse_version(version)) == expected
    (connector,) = render_requests(config, what="connector", version=parse_version(version))
    assert json.loads(connector.body).get("client_config") == expected


def test_model_has_no_interface_and_ids_are_known_after_apply(tmp_path: Path) -> None:
    group, model = render_requests(config_for(tmp_path, "pairs-scores"), what="model")
    assert json.loads(group.body) == {"name": "os-rerank", "description": "Model group for os-rerank cross-encoders"}
    body = json.loads(model.body)
    assert "interface" not in body
    assert body["function_name"] == "remote"
    assert body["connector_id"] == body["model_group_id"] == KNOWN_AFTER_APPLY


def test_credentials_are_redacted_and_role_arn_shown(tmp_path: Path) -> None:
    (connector,) = render_requests(config_for(tmp_path, "tei-rerank"), what="connector")
    assert json.loads(connector.body)["credential"] == {"access_key": "***", "secret_key": "***"}
    arn = "arn:aws:iam::123456789012:role/os-rerank"
    config = config_for(tmp_path, "tei-rerank")
    config = config.model_copy(update={"connector": config.connector.model_copy(update={"role_arn": arn})})
    (connector,) = render_requests(config, what="connector")
    assert json.loads(connector.body)["credential"] == {"roleArn": arn}


def test_unicode_is_written_as_is(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text(
        json.dumps({"id": "ko", "passage_text": "서울은 한국의 수도이다"}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "hi", "passage_text": "नई दिल्ली भारत की राजधानी है"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    config = config_for(tmp_path, "hf-text-classification", "\n")
    config = config.model_copy(update={"index": config.index.model_copy(update={"documents": Path("docs.jsonl")})})
    _, documents = render_requests(config, what="index")
    assert "서울은 한국의 수도이다" in documents.body and "नई दिल्ली भारत की राजधानी है" in documents.body
    assert documents.body.endswith("\n") and documents.content_type == "application/x-ndjson"


@pytest.mark.parametrize("text", ["2", "2.19", "3.8.0", "2.19.0-SNAPSHOT"])
def test_parse_version_accepts(text: str) -> None:
    assert parse_version(text)[0] in (2, 3)


@pytest.mark.parametrize("text", ["", "two", "2.x", "1.2.3.4"])
def test_parse_version_refuses(text: str) -> None:
    with pytest.raises(RenderError):
        parse_version(text)


def test_cli_render_prints_what_render_requests_returns(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["render", "--config", str(EXAMPLE), "--what", "pipeline"], environ={}, stdout=out, stderr=err)
    assert (code, err.getvalue()) == (0, "")
    (pipeline,) = render_requests(load_config(EXAMPLE, {}), what="pipeline")
    assert out.getvalue() == f"# pipeline\n{pipeline.method} {pipeline.path}\n{pipeline.body}\n"


def test_cli_render_bad_version_is_one_line(tmp_path: Path) -> None:
    err = io.StringIO()
    code = main(["render", "--config", str(EXAMPLE), "--opensearch-version", "latest"], environ={},
                stdout=io.StringIO(), stderr=err)
    assert code == 2  # a bad argument
    assert err.getvalue() == ("os-rerank: error: --opensearch-version: not a version: 'latest'\n"
                              "os-rerank: error: fix: write it like 2.19.0\n")
