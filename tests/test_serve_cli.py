"""`os-rerank serve` from the command line: help, start-up report, SigV4 from the environment, --record, SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from os_rerank.cli import main
from tests.support.serve import read_banner

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_serve_help_lists_the_options() -> None:
    code, out, err = run("serve", "--help")
    assert (code, err) == (0, "")
    for option in ("--host", "--port", "--contract", "--model", "--endpoint-name", "--max-length", "--max-body-bytes",
                   "--access-key-id", "--record", "--quantize", "OS_RERANK_SERVE_SECRET_ACCESS_KEY", "--region",
                   "--max-documents", "--max-connections", "--request-timeout"):
        assert option in out
    assert "--secret" not in out  # a secret on the command line would show in `ps`


def test_key_id_without_secret_is_an_error() -> None:
    code, out, err = run("serve", "--port", "0", "--access-key-id", "AKIDONLY")
    assert (code, out) == (2, "")
    assert err == ("os-rerank: error: SigV4 needs both an access key id and its secret\n"
                   "os-rerank: error: fix: set OS_RERANK_SERVE_SECRET_ACCESS_KEY together with --access-key-id / "
                   "OS_RERANK_SERVE_ACCESS_KEY_ID\n")


def test_an_unwritable_record_file_is_refused_before_serving(tmp_path: Path) -> None:
    code, out, err = run("serve", "--port", "0", "--record", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert (code, out) == (2, "")
    assert err == (f"os-rerank: error: cannot write the record file {tmp_path}/no/such/dir.jsonl: No such file or "
                   "directory\n"
                   "os-rerank: error: fix: pass --record a file this user can write, or leave it out\n")


@pytest.mark.parametrize(("argv", "message"), [
    (("--region", "Mars"), "argument --region: expected an AWS region such as us-west-2, got 'Mars'"),
    (("--max-documents", "0"), "argument --max-documents: expected a number of documents from 1 to 1000000, got '0'"),
    (("--request-timeout", "nan"), "argument --request-timeout: expected a number of seconds, got 'nan'"),
    (("--max-connections", "-1"), "argument --max-connections: expected a number of connections from 1 to 10000, "
                                  "got '-1'"),
])
def test_limit_and_region_arguments_are_checked(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run("serve", "--port", "0", *argv)
    assert (code, out) == (2, "")
    assert message in err and len(err.splitlines()) <= 2


def test_bad_model_directory_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed (pip install os-rerank[serve])")
    code, _, err = run("serve", "--port", "0", "--model", str(tmp_path))
    assert code == 2
    assert err.startswith(f"os-rerank: error: {tmp_path}: no config.json; expected a directory saved with")


def test_serve_subprocess_end_to_end(tmp_path: Path) -> None:
    record = tmp_path / "bodies.jsonl"
    env = {**os.environ, "OS_RERANK_SERVE_ACCESS_KEY_ID": "AKIDCLITEST", "OS_RERANK_SERVE_SECRET_ACCESS_KEY": "sekrit",
           "PYTHONUNBUFFERED": "1"}
    # The trailing `serve` is what SageMaker appends when it starts a bring-your-own container.
    cmd = [sys.executable, "-m", "os_rerank.cli", "serve", "--port", "0", "--contract", "pairs-scores",
           "--endpoint-name", "cli-ep", "--record", str(record), "serve"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner, url = read_banner(proc)
        assert banner[:4] == [
            "scorer    lexical (BM25 + ordered bigrams over the request's documents; no model weights)\n",
            "contract  pairs-scores (POST /invocations)\n",
            "endpoint  POST /endpoints/cli-ep/invocations\n",
            "sigv4     verified for access key AKIDCLITEST, region us-west-2, on every POST route\n",
        ]
        assert url.startswith("http://127.0.0.1:")
        c = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-west-2",
                         aws_access_key_id="AKIDCLITEST", aws_secret_access_key="sekrit")
        body = json.dumps({"pairs": [["수도", "서울은 수도"], ["q", "\x00 control"]]}, ensure_ascii=False)
        answer = json.loads(c.invoke_endpoint(EndpointName="cli-ep", Body=body.encode(),
                                              ContentType="application/json")["Body"].read())
        assert len(answer["scores"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "POST /endpoints/cli-ep/invocations 200 pairs=2 " in stderr
    assert "sekrit" not in stderr
    assert [json.loads(line)["body"] for line in record.read_text(encoding="utf-8").splitlines()] == [body]
