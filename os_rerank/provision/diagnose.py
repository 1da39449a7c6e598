"""The one remedy table: an ML Commons / neural-search failure reason -> the one fix that resolves it
(docs/ml-commons.md#failures).

`diagnose(status, reason, url=...)` returns the fix, or None when the reason is not one we know. `diagnoser(config)`
binds the connector URL so the trusted-endpoint fix can name the exact regex; `open_cluster(config)` connects with
it installed as `Cluster.diagnose`, so every command that talks to OpenSearch shows the same fix for the same
failure (the transport itself knows nothing of ML Commons).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import cluster as cluster_module
from ..cluster import Cluster
from ..config import Config
from ..mlcommons import MODELS, PRIVATE_IP, TRUSTED_REGEX, path, url_regex

_URL_IN_REASON = re.compile(r"URL is: (\S+)")
_UNDEPLOY = path(MODELS, "<id>", "_undeploy")


def _trusted(reason: str, url: str | None) -> str:
    found = _URL_IN_REASON.search(reason)
    target = found.group(1).rstrip(",;.)") if found else url
    regex = url_regex(target) if target else "^<your connector URL, regex-escaped>$"
    return (f"add {regex} to the cluster setting {TRUSTED_REGEX} (a list: setting it replaces the whole list, so "
            "keep every existing entry); `os-rerank setup` does this for you")


Rule = tuple[str, Callable[[str, str | None], str]]

# (lower-case substring of the reason, fix). The first match wins; the most specific texts come first.
RULES: list[Rule] = [
    ("trusted connector private endpoint regex", lambda r, u: (
        "the host is private and plugins.ml_commons.trusted_connector_private_endpoints_regex (3.7+) is set: add "
        f"{url_regex(u) if u else 'a regex for the connector URL'} to that list too")),
    ("trusted connector endpoint", _trusted),
    ("trusted connector endpoints regex is not configured", _trusted),
    ("private ip address", lambda r, u: (
        f"set the cluster setting {PRIVATE_IP}: true (exists from OpenSearch 2.15; before 2.15 an http connector "
        "cannot reach a private or loopback host), or use a public endpoint URL")),
    ("restricted ip address", lambda r, u: (
        "the host is in plugins.ml_commons.connector.restricted_ip_patterns (a node setting): use another host")),
    ("memory circuit breaker is open", lambda r, u: (
        "ML Commons' memory circuit breaker (2.12-2.14 applies it to remote models): set "
        "plugins.ml_commons.jvm_heap_memory_threshold to 100, give the nodes more heap, or upgrade to 2.15+")),
    ("disk circuit breaker is open", lambda r, u: (
        "ML Commons' disk circuit breaker: free disk space (5 GB by default), or lower "
        "plugins.ml_commons.disk_free_space_threshold (2.16+); 2.15+ exempts remote models")),
    ("circuit breaker is open", lambda r, u: (
        "an ML Commons circuit breaker is open: check heap and disk, or raise its threshold setting")),
    ("please undeploy the models first", lambda r, u: (
        f"a deployed model uses the connector: undeploy it (POST {_UNDEPLOY}), update, then deploy again; "
        "`os-rerank setup` does this for the models it manages")),
    ("still using this connector", lambda r, u: (
        "models still use the connector: undeploy and delete them first (`os-rerank teardown` goes in that order)")),
    ("cannot be deleted in deploying or deployed state", lambda r, u: (
        f"undeploy the model first (POST {_UNDEPLOY}), then delete it; `os-rerank teardown` does both")),
    ("placeholder not filled", lambda r, u: (
        "the connector's request_body names a ${parameters.X} the pre-process script did not produce: set "
        "sagemaker.contract to the endpoint's contract and run `os-rerank setup` to put the matching scripts in")),
    ("invalid json in payload", lambda r, u: (
        "the request body after substitution is not JSON: run `os-rerank setup` so the connector uses os-rerank's "
        "scripts (they send the whole body as one JSON parameter)")),
    ("invalid payload", lambda r, u: (
        "the request body after substitution is not JSON: run `os-rerank setup` so the connector uses os-rerank's "
        "scripts (they send the whole body as one JSON parameter)")),
    ("pre_process_function not defined", lambda r, u: (
        "a text_similarity model needs a pre-process script: run `os-rerank setup` to update the connector")),
    ("master key has not been initialized", lambda r, u: (
        "ML Commons is still creating its encryption key on this fresh cluster: wait 10 seconds and retry "
        "(`os-rerank setup` retries this itself)")),
    ("throttl", lambda r, u: (
        "the SageMaker endpoint is throttling: add instances or autoscaling, lower connector.client_config."
        "max_connection, and raise max_retry_times with backoff (retries need 2.15+)")),
    ("error validating input schema", lambda r, u: (
        "the model has an `interface` that rejects text_similarity input: delete the model and register it "
        "without one (`os-rerank teardown` then `os-rerank setup`)")),
    ("connector access control parameters", lambda r, u: (
        "do not send access_mode/backend_roles: connector access control is disabled on this cluster")),
    ("model access control parameters", lambda r, u: (
        "do not send access_mode/backend_roles: model access control is disabled on this cluster")),
    ("model not ready yet", lambda r, u: (
        "deploy the model (`os-rerank setup` deploys it), or enable plugins.ml_commons.model_auto_deploy.enable")),
    ("connector credential is null or empty", lambda r, u: (
        "the connector needs a credential: make AWS keys available through the boto3 chain")),
    ("missing credential", lambda r, u: (
        "self-managed OpenSearch needs access_key/secret_key in the connector (roleArn works on Amazon OpenSearch "
        "Service only): unset connector.role_arn and provide keys through the boto3 chain")),
    ("security token included in the request is expired", lambda r, u: (
        "the connector's temporary AWS credentials expired: run `os-rerank rotate-credentials`, or use "
        "long-lived keys")),
    ("the rerank result should contain index and relevance_score", lambda r, u: (
        "a built-in rerank post-process met a different response shape: set sagemaker.contract to the endpoint's "
        "contract and run `os-rerank setup`")),
    ("scores and hits are not the same length", lambda r, u: (
        "the endpoint returned a different number of scores than documents (the connector's post-process must "
        "return one FLOAT32 score per document, in order): check sagemaker.contract (a top-k endpoint must return "
        "every document)")),
    ("no text documents were provided", lambda r, u: (
        "the rerank got an empty page: do not rerank size:0 searches or pages past the last hit")),
    ("no document context found", lambda r, u: (
        "the pipeline needs context.document_fields: set pipeline.document_fields and run `os-rerank setup`")),
    ("remote inference is disabled", lambda r, u: (
        "set the cluster setting plugins.ml_commons.remote_inference.enabled: true")),
    ("update connector api is currently disabled", lambda r, u: (
        "OpenSearch 2.11 needs plugins.ml_commons.update_connector.enabled; better, upgrade to 2.12+")),
    ("wrong input type", lambda r, u: "remote text_similarity needs OpenSearch 2.12 or newer: upgrade the cluster"),
    ("maximum number of statements that can be executed in a loop", lambda r, u: (
        "the Painless loop budget ran out on a large page: rerank fewer or shorter documents")),
    ("too many dynamic script compilations", lambda r, u: (
        "scripts are being recompiled per request: keep connector scripts static (os-rerank's are)")),
    ("is already being used by a model group", lambda r, u: (
        "a model group with this name exists but os-rerank cannot see it (access control?): set model.group "
        "to another name, or to null to let ML Commons pick")),
    ("error communicating with remote model", lambda r, u: (
        "OpenSearch could not reach the endpoint: check the connector URL from the cluster's network and "
        "client_config (connection pool, timeouts)")),
    ("error from remote service", lambda r, u: (
        "the endpoint answered with an error: check it directly (`os-rerank verify` calls it with boto3), its "
        "logs, and that sagemaker.contract matches it")),
]


def diagnose(status: int | None, reason: str, *, url: str | None = None) -> str | None:
    """The fix for an ML Commons failure `reason` (HTTP `status`), or None when it is not a known one."""
    text = reason.lower()
    for needle, fix in RULES:
        if needle in text:
            return fix(reason, url)
    if status == 429:
        return "the cluster is overloaded (429): wait and retry"
    return None


def diagnoser(config: Config) -> Callable[[int | None, str], str | None]:
    """`diagnose` with the connector URL of `config` bound, ready to install as Cluster.diagnose."""
    url = config.sagemaker.connector_url

    def bound(status: int | None, reason: str) -> str | None:
        return diagnose(status, reason, url=url)

    return bound


def open_cluster(config: Config) -> Cluster:
    """A Cluster for `config` whose errors carry this table's fix for ML Commons failures."""
    cluster = cluster_module.connect(config)  # looked up at call time: tests replace the transport
    cluster.diagnose = diagnoser(config)
    return cluster
