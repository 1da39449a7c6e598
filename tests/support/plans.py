"""A config, a desired state and cluster states built by hand: the inputs of pure plans (test_plan, test_apply, ...)."""

from __future__ import annotations

import copy
from typing import Any

from os_rerank.config import Config
from os_rerank.provision.plan import Desired, desired_state, url_regex
from os_rerank.provision.render import Version
from os_rerank.provision.state import ClusterState, Found, IndexState

URL = "http://10.0.0.5:8080/endpoints/os-rerank-cross-encoder/invocations"


SAGEMAKER_DEFAULT = r"^https://runtime\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$"


DEFAULTS = (SAGEMAKER_DEFAULT, r"^https://api\.openai\.com/.*$")


def make_config(**sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {"sagemaker": {"region": "us-west-2", "endpoint_name": "os-rerank-cross-encoder",
                                          "endpoint_url": URL}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return Config.model_validate(data)


def desired(version: Version = (2, 19, 0), *, private: bool = True, **sections: dict[str, Any]) -> Desired:
    return desired_state(make_config(**sections), version, endpoint_private=private)


def empty(version: Version = (2, 19, 0), regexes: tuple[str, ...] = DEFAULTS) -> ClusterState:
    return ClusterState(version=version, trusted_regexes=regexes, trusted_regexes_set=False,
                        private_ip_enabled=False if version >= (2, 15, 0) else None)


def live_connector(want: Desired) -> dict[str, Any]:
    """The connector as GET returns it: no credential, client_config with defaults, PREDICT upper-cased."""
    body = copy.deepcopy(want.connector)
    body.pop("credential")
    body["client_config"] = {**body.get("client_config", {}), "retry_timeout_seconds": 30, "max_connection": 20}
    body["actions"][0]["action_type"] = "PREDICT"
    body["owner"] = {"name": "admin"}
    body["created_time"] = 1
    return body


def full(want: Desired) -> ClusterState:
    """A state that matches `want` exactly."""
    docs = {d["id"]: {k: v for k, v in d.items() if k != "id"} for d in want.documents}
    pipeline = copy.deepcopy(want.pipeline)
    pipeline["response_processors"][0]["rerank"]["ml_opensearch"]["model_id"] = "m1"
    return ClusterState(
        version=want.version, trusted_regexes=(*DEFAULTS, url_regex(URL)), trusted_regexes_set=True,
        private_ip_enabled=True,
        connectors=(Found("c1", live_connector(want)),),
        model_groups=(Found("g1", {"name": "os-rerank"}),),
        models=(Found("m1", {"name": want.model_name, "connector_id": "c1", "model_group_id": "g1",
                             "model_state": "DEPLOYED"}),),
        index=IndexState({"passage_text": {"type": "text"}}, len(docs), docs),
        pipeline=pipeline,
    )
