"""`os-rerank endpoint deploy|status|delete` in-process against moto: output shapes, and no secret ever printed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

pytest.importorskip("moto", reason="moto[sagemaker] is needed for the AWS side (pip install -e '.[test]')")

from moto import mock_aws  # noqa: E402

from os_rerank.aws import endpoint as aws_endpoint  # noqa: E402
from os_rerank.cli import main  # noqa: E402

ACCESS_KEY = "AKIDEXAMPLE-os-rerank-cli"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto, with the recognisable fake keys in the boto3 chain (set after moto put its own in place)."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with mock_aws():
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
        monkeypatch.setattr(aws_endpoint, "POLL_SECONDS", 0.0)
        yield


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        "sagemaker:\n  region: us-west-2\n  endpoint_name: os-rerank-ce\n"
        f"deploy:\n  preset: bge-reranker-base\n  execution_role_arn: {ROLE}\n"
        "  autoscaling:\n    min: 1\n    max: 3\n    target_invocations_per_instance: 300\n",
        encoding="utf-8",
    )
    return str(path)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
            assert secret not in text


def test_deploy_status_delete_json(aws: None, config: str) -> None:
    code, out, err = run("endpoint", "deploy", "--config", config, "--json")
    assert code == 0, err
    deployed = json.loads(out)
    assert deployed["outcome"] == "created" and deployed["status"] == "InService"
    assert deployed["writes"] == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint",
                                  "RegisterScalableTarget", "PutScalingPolicy"]
    assert "endpoint os-rerank-ce: InService (0s)" in err  # progress goes to stderr, JSON alone to stdout

    code, out, err = run("endpoint", "deploy", "--config", config, "--json")
    assert code == 0 and json.loads(out)["writes"] == []

    code, out, err = run("endpoint", "status", "--config", config, "--json")
    status = json.loads(out)
    assert status["status"] == "InService"
    assert status["hf_model_id"] == "BAAI/bge-reranker-base"
    assert status["autoscaling"]["max"] == 3 and status["autoscaling"]["target"] == 300.0
    assert_no_secrets(out, err)

    code, out, err = run("endpoint", "delete", "--config", config, "--json")
    assert code == 0
    assert json.loads(out)["deleted"][1] == "endpoint os-rerank-ce"
    assert_no_secrets(out, err)


def test_text_output(aws: None, config: str) -> None:
    code, out, err = run("endpoint", "status", "--config", config)
    assert code == 0
    assert out.splitlines()[2:4] == ["endpoint  os-rerank-ce", "region    us-west-2"]
    assert "status    missing" in out
    code, out, err = run("endpoint", "deploy", "--config", config)
    assert code == 0, err
    assert out.startswith("endpoint os-rerank-ce: created, InService\n")
    assert "ml.m5.xlarge" in out and "huggingface-pytorch-inference" in out
    code, out, err = run("endpoint", "status", "--config", config)
    assert "instance_type            ml.m5.xlarge" in out
    assert "autoscaling              min=1, max=3, target=300.0," in out
    assert "differences_from_config  none" in out
    code, out, err = run("endpoint", "delete", "--config", config)
    assert "deleted   endpoint os-rerank-ce" in out
    code, out, err = run("endpoint", "delete", "--config", config)
    assert "missing   endpoint os-rerank-ce (nothing to delete)" in out
    assert_no_secrets(out, err)


def test_an_aws_error_that_quotes_a_key_is_redacted(aws: None, config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(**_: Any) -> Any:
        message = f"The security token included in the request is invalid ({ACCESS_KEY}, {SESSION_TOKEN})"
        return type("R", (), {"status_code": 403, "headers": {}})(), {
            "Error": {"Code": "UnrecognizedClientException", "Message": message}}

    real = aws_endpoint.aws_clients

    def failing_clients(cfg: Any) -> aws_endpoint.AwsClients:
        clients = real(cfg)
        clients.sagemaker.meta.events.register_first("before-call.sagemaker.DescribeEndpoint", fail)
        return clients

    monkeypatch.setattr(aws_endpoint, "aws_clients", failing_clients)
    code, out, err = run("endpoint", "deploy", "--config", config)
    assert code == 7
    assert "os-rerank: error: DescribeEndpoint: UnrecognizedClientException" in err
    assert "fix: refresh the AWS credentials of the boto3 chain" in err
    assert_no_secrets(out, err)


def test_missing_role_exits_2_with_the_fix(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "norole.yaml"
    path.write_text("sagemaker:\n  region: us-west-2\n  endpoint_name: os-rerank-ce\ndeploy:\n"
                    "  preset: ms-marco-minilm-l6\n", encoding="utf-8")
    code, out, err = run("endpoint", "deploy", "--config", str(path))
    assert code == 2
    assert "os-rerank: error: norole.yaml: deploy.execution_role_arn: field required to deploy" in err
    assert "sagemaker.amazonaws.com" in err


def test_deploy_dry_run_then_deploy_with_the_handler(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "handler.yaml"
    path.write_text("sagemaker:\n  region: us-west-2\n  endpoint_name: os-rerank-ce\n  contract: pairs-scores\n"
                    f"deploy:\n  preset: bge-reranker-base\n  execution_role_arn: {ROLE}\n", encoding="utf-8")
    code, out, err = run("endpoint", "deploy", "--config", str(path), "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "endpoint os-rerank-ce: plan (os-rerank handler); nothing was written"
    assert lines[3].startswith("  data      s3://sagemaker-us-west-2-123456789012/os-rerank/os-rerank-ce/")
    # 8: inference.py and the seven os_rerank files it imports (model_archive.CODE_FILES)
    assert "8 files, sha256 " in lines[3]
    ops = [line.split()[0] for line in lines[6:]]
    assert ops == ["CreateBucket", "PutObject", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    code, out, err = run("endpoint", "status", "--config", str(path), "--json")
    assert json.loads(out)["status"] == "missing"  # the dry run created nothing

    code, out, err = run("endpoint", "deploy", "--config", str(path))
    assert code == 0, err
    assert "  data      s3://sagemaker-us-west-2-123456789012/os-rerank/os-rerank-ce/" in out
    assert "writes    CreateBucket, PutObject, CreateModel, CreateEndpointConfig, CreateEndpoint" in out
    code, out, err = run("endpoint", "deploy", "--config", str(path), "--dry-run", "--json")
    plan = json.loads(out)
    assert plan["writes"] == [] and plan["steps"][0]["operation"] == "no change"
    code, out, err = run("endpoint", "delete", "--config", str(path))
    assert "deleted   s3 object s3://sagemaker-us-west-2-123456789012/os-rerank/os-rerank-ce/" in out
    assert_no_secrets(out, err)
