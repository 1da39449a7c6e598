"""render --what iam: least-privilege policies for Amazon OpenSearch Service, checked with moto's IAM (which
validates policy documents as IAM does on create) and its policy evaluator (allowed / not allowed per action and
resource). Real IAM and a real domain are not reachable here: see the README."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult

from os_rerank.cli import main

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROLE = "arn:aws:iam::123456789012:role/os-rerank-connector"
OPERATOR = "arn:aws:iam::123456789012:role/ops"
ENDPOINT = "arn:aws:sagemaker:us-west-2:123456789012:endpoint/my-rerank-endpoint"
DOMAIN = "arn:aws:es:us-west-2:123456789012:domain/my-domain"


def _config(tmp_path: Path, url: str = "https://search-my-domain-abcdefghij0123456789klmnop.us-west-2.es.amazonaws.com",
            role_arn: str | None = ROLE) -> Path:
    connector = {"name": "c", **({"role_arn": role_arn} if role_arn else {})}
    body = {"opensearch": {"url": url, "auth": {"type": "aws_sigv4"}},
            "sagemaker": {"region": "us-west-2", "endpoint_name": "My-Rerank-Endpoint"}, "connector": connector,
            "model": {"name": "m"}, "index": {"name": "i"}, "pipeline": {"name": "p"}}
    path = tmp_path / "aos.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def _render(config: Path, *extra: str) -> tuple[int, dict[str, tuple[str, dict]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["render", "--config", str(config), "--what", "iam", *extra], environ={}, stdout=out, stderr=err)
    blocks: dict[str, tuple[str, dict]] = {}
    for block in out.getvalue().split("\n\n"):
        lines = block.splitlines()
        if lines:
            blocks[lines[0][2:]] = (lines[1], json.loads("\n".join(lines[2:])))
    return code, blocks, err.getvalue()


def test_policies_are_valid_for_iam_and_allow_only_what_is_needed(tmp_path: Path) -> None:
    code, blocks, err = _render(_config(tmp_path), "--operator-arn", OPERATOR)
    assert code == 0, err
    trust = blocks["iam: connector role trust policy"][1]
    invoke = blocks["iam: connector role permissions"][1]
    operator = next(v for k, v in blocks.items() if k.startswith("iam: the operator's policy"))[1]
    with mock_aws():  # moto validates policy documents as IAM does on create
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_role(RoleName="os-rerank-connector", AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName="os-rerank-connector", PolicyName="invoke", PolicyDocument=json.dumps(invoke))
        iam.create_policy(PolicyName="os-rerank-operator", PolicyDocument=json.dumps(operator))
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "opensearchservice.amazonaws.com"},
                                   "Action": "sts:AssumeRole",
                                   "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                                 "ArnLike": {"aws:SourceArn": DOMAIN}}}]
    allowed = PermissionResult.PERMITTED
    policy = IAMPolicy(json.dumps(invoke))
    assert policy.is_action_permitted("sagemaker:InvokeEndpoint", ENDPOINT) == allowed
    assert policy.is_action_permitted("sagemaker:InvokeEndpoint", ENDPOINT + "-other") != allowed
    assert policy.is_action_permitted("sagemaker:DeleteEndpoint", ENDPOINT) != allowed
    ops = IAMPolicy(json.dumps(operator))
    assert ops.is_action_permitted("iam:PassRole", ROLE) == allowed
    assert ops.is_action_permitted("iam:PassRole", ROLE + "-admin") != allowed
    assert ops.is_action_permitted("es:ESHttpPost", DOMAIN + "/_plugins/_ml/connectors/_create") == allowed
    assert ops.is_action_permitted("es:ESHttpPost", DOMAIN.replace("my-domain", "other") + "/x") != allowed
    assert ops.is_action_permitted("es:UpdateDomainConfig", DOMAIN) != allowed
    mapping = blocks["role mapping: ML Commons' role (a PUT replaces the mapping: keep its existing backend roles)"]
    assert mapping == ("PUT /_plugins/_security/api/rolesmapping/ml_full_access", {"backend_roles": [OPERATOR]})


def test_without_a_domain_url_or_operator_only_what_is_known(tmp_path: Path) -> None:
    code, blocks, _ = _render(_config(tmp_path, url="https://opensearch.internal:9200"))
    assert code == 0
    assert "ArnLike" not in blocks["iam: connector role trust policy"][1]["Statement"][0]["Condition"]
    operator = next(v for k, v in blocks.items() if k.startswith("iam: the operator's policy"))[1]
    assert [s["Action"] for s in operator["Statement"]] == ["iam:PassRole"]
    assert not any(k.startswith("role mapping") for k in blocks)


@pytest.mark.parametrize(("role_arn", "extra", "message"), [
    (None, (), "render --what iam needs connector.role_arn"),
    (ROLE, ("--operator-arn", "ops"), "--operator-arn 'ops' is not an IAM ARN"),
])
def test_what_iam_cannot_render_is_a_usage_error(tmp_path: Path, role_arn: str | None, extra: tuple[str, ...],
                                                 message: str) -> None:
    code, _, err = _render(_config(tmp_path, role_arn=role_arn), *extra)
    assert code == 2 and message in err
