"""The IAM side of Amazon OpenSearch Service, least privilege: what an AWS admin creates once. Pure.

On a domain, the connector carries `roleArn` (connector.role_arn) instead of keys: the domain assumes that role to
call SageMaker. So the AWS admin makes
- the connector role: trusted by the OpenSearch service only (`opensearchservice.amazonaws.com`; confused-deputy
  conditions on the account, and on the domain when its ARN can be read from opensearch.url), allowed
  `sagemaker:InvokeEndpoint` on the one endpoint's ARN and nothing else;
- the operator's policy: `iam:PassRole` on exactly that role, and (when the domain
  is known) `es:ESHttp*` on that domain's paths;
- with fine-grained access control, the operator's IAM ARN mapped as a backend role to `ml_full_access` (ML
  Commons refuses a connector with a roleArn otherwise) and to the role `render --what role` prints.
AWS documents this in "Creating connectors for third-party ML platforms" (Amazon OpenSearch Service developer
guide); what was checked here and what needs an account is in the README.
"""

from __future__ import annotations

import re
from typing import Any

from ..config import Config
from ..errors import UsageError
from ..provision.permissions import ROLE_NAME
from ..provision.render import Rendered, dumps

OPENSEARCH_SERVICE = "opensearchservice.amazonaws.com"
_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>.*/)?(?P<name>[^/]+)$")
# search-<domain>-<id>.<region>.es.amazonaws.com (vpc- for VPC domains); the id has no hyphen.
_DOMAIN_HOST = re.compile(r"^(?:search|vpc)-(?P<domain>[a-z][a-z0-9-]{2,27})-[a-z0-9]+\.(?P<region>[a-z0-9-]+)"
                          r"\.es\.amazonaws\.com(?:\.cn)?$")
POLICY_VERSION = "2012-10-17"


def domain_arn(config: Config, partition: str, account: str) -> str | None:
    """The domain's ARN when opensearch.url is a domain endpoint (search-/vpc-<name>-<id>.<region>.es...)."""
    from urllib.parse import urlsplit

    found = _DOMAIN_HOST.match((urlsplit(config.opensearch.url).hostname or "").lower())
    if not found:
        return None
    return f"arn:{partition}:es:{found.group('region')}:{account}:domain/{found.group('domain')}"


def iam_requests(config: Config, operator_arn: str | None) -> list[Rendered]:
    """The connector role's trust and permission policies, the operator's policy, and the role mappings."""
    role_arn = config.connector.role_arn
    if not role_arn:
        raise UsageError("render --what iam needs connector.role_arn: the role the domain assumes to call SageMaker",
                         fix="set connector.role_arn to arn:aws:iam::<account>:role/<name> (the role these "
                         "policies describe)")
    parsed = _ROLE_ARN.match(role_arn)
    if parsed is None:
        raise UsageError(f"connector.role_arn {role_arn!r} is not an IAM role ARN")
    if operator_arn is not None and not re.match(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+$", operator_arn):
        raise UsageError(f"--operator-arn {operator_arn!r} is not an IAM ARN",
                         fix="pass the ARN of the IAM role or user that runs os-rerank")
    partition, account, role_name = parsed.group("partition"), parsed.group("account"), parsed.group("name")
    endpoint = (f"arn:{partition}:sagemaker:{config.sagemaker.region}:{account}:endpoint/"
                f"{config.sagemaker.name.lower()}")  # SageMaker endpoint ARNs are lower-case
    domain = domain_arn(config, partition, account)
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account}}
    if domain:
        condition["ArnLike"] = {"aws:SourceArn": domain}
    trust = {"Version": POLICY_VERSION, "Statement": [{
        "Effect": "Allow", "Principal": {"Service": OPENSEARCH_SERVICE}, "Action": "sts:AssumeRole",
        "Condition": condition}]}
    invoke = {"Version": POLICY_VERSION, "Statement": [{
        "Sid": "InvokeTheRerankEndpoint", "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint",
        "Resource": endpoint}]}
    operator_statements: list[dict[str, Any]] = [{
        "Sid": "PassTheConnectorRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": role_arn}]
    if domain:
        operator_statements.append({
            "Sid": "CallTheDomain", "Effect": "Allow",
            "Action": ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"],
            "Resource": f"{domain}/*"})
    operator = {"Version": POLICY_VERSION, "Statement": operator_statements}
    out = [
        Rendered("iam: connector role trust policy", "IAM",
                 f"aws iam create-role --role-name {role_name} --assume-role-policy-document", dumps(trust)),
        Rendered("iam: connector role permissions", "IAM",
                 f"aws iam put-role-policy --role-name {role_name} --policy-name os-rerank-invoke-endpoint "
                 "--policy-document", dumps(invoke)),
        Rendered("iam: the operator's policy (attach to the IAM role or user that runs os-rerank)", "IAM",
                 "aws iam create-policy --policy-name os-rerank-operator --policy-document", dumps(operator)),
    ]
    if operator_arn is None:
        return out
    mapping = {"backend_roles": [operator_arn]}
    out += [
        Rendered("role mapping: ML Commons' role (a PUT replaces the mapping: keep its existing backend roles)",
                 "PUT", "/_plugins/_security/api/rolesmapping/ml_full_access", dumps(mapping)),
        Rendered("role mapping: the operator role of `render --what role`", "PUT",
                 f"/_plugins/_security/api/rolesmapping/{ROLE_NAME}", dumps(mapping)),
    ]
    return out
