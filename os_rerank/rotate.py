"""Put fresh AWS credentials into the connector: undeploy its models, update the connector, deploy, verify.

ML Commons refuses to update a connector while a model that uses it is deployed (400 "... models are still using
this connector, please undeploy the models first"), so a rotation is four steps. When the update fails after the
undeploy, the models are deployed again with the credentials they had, and the error is raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import lock
from . import mlcommons as ml
from .cluster import Cluster
from .config import Config
from .credentials import ConnectorCredential
from .errors import ClusterError, OsRerankError, VerifyError
from .events import OnEvent, ignore, note

# verify(cluster, config, model_id) raises when the roundtrip fails; default: `predict_roundtrip`.
Verify = Callable[[Cluster, Config, str], None]

POLL_SECONDS = 1.0
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class RotateResult:
    """What a rotation touched; never carries the credential itself."""

    connector_id: str
    model_ids: tuple[str, ...]
    credential_kind: str  # "keys", "temporary keys" or "role ARN"
    verified: bool
    steps: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "connector_id": self.connector_id,
            "model_ids": list(self.model_ids),
            "credential": self.credential_kind,
            "verified": self.verified,
            "steps": list(self.steps),
        }


def find_connector(cluster: Cluster, name: str) -> str:
    """The id of the one connector called `name`; OsRerankError when there is none or more than one."""
    found = ml.find_by_name(cluster, ml.CONNECTORS, name)
    if not found:
        raise ClusterError(f"no connector named {name!r} on the cluster",
                            fix="run `os-rerank setup` first (or set connector.name to the connector's name)")
    if len(found) > 1:
        ids = ", ".join(f.id for f in found)
        raise ClusterError(f"{len(found)} connectors are named {name!r} ({ids}); os-rerank cannot tell which to "
                            "rotate", fix="delete the extra connectors, or give this one a unique connector.name")
    return found[0].id


def find_models(cluster: Cluster, connector_id: str) -> list[tuple[str, str]]:
    """(model id, model_state) of every model registered on the connector, the state read by id (realtime)."""
    return [(m.id, m.model_state) for m in ml.models_using(cluster, "connector_id", connector_id)]


def deploy_model(
    cluster: Cluster,
    model_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> None:
    """Deploy `model_id` and poll until DEPLOYED; ClusterError on DEPLOY_FAILED or after `timeout`."""
    cluster.request("POST", ml.path(ml.MODELS, model_id, "_deploy"))
    start = clock()
    while True:
        state = str((cluster.request("GET", ml.path(ml.MODELS, model_id)) or {}).get("model_state", ""))
        if state == ml.DEPLOYED:
            return
        if state in ml.FAILED_STATES:
            raise ClusterError(f"model {model_id} is {state} after the credential update",
                               fix="check the OpenSearch logs (ML Commons) and run rotate-credentials again")
        if clock() - start >= timeout:
            raise ClusterError(f"model {model_id} is still {state or 'not deployed'} after {timeout:g}s",
                               fix="check `os-rerank status`, then run rotate-credentials again")
        sleep(poll)


def predict_roundtrip(cluster: Cluster, config: Config, model_id: str) -> None:
    """One rerank predict through ML Commons (verify.predict), so the connector signs a call with the new keys."""
    from .verify import predict, probe_documents

    docs = probe_documents(config)
    scores, _ = predict(cluster, model_id, config.verify.query, docs)
    if len(scores) != len(docs):
        raise VerifyError(f"predict through model {model_id} returned {len(scores)} scores for {len(docs)} "
                          "documents after the credential update")


def rotate_credentials(
    cluster: Cluster,
    config: Config,
    cred: ConnectorCredential,
    *,
    on_event: OnEvent = ignore,
    verify: Verify | None = predict_roundtrip,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> RotateResult:
    """Undeploy the connector's models, PUT the new `credential`, deploy them again and verify one."""
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        on_event(note(text))

    with lock.held(cluster, config, "rotate-credentials", on_event):
        return _rotate(cluster, config, cred, steps, step, verify,
                       {"sleep": sleep, "clock": clock, "timeout": timeout, "poll": poll})


def _rotate(cluster: Cluster, config: Config, cred: ConnectorCredential, steps: list[str],
            step: Callable[[str], None], verify: Verify | None, waits: dict[str, Any]) -> RotateResult:
    connector_id = find_connector(cluster, config.connector.name)
    models = find_models(cluster, connector_id)
    model_ids = tuple(m for m, _ in models)
    step(f"connector {connector_id}: {len(models)} model(s) use it")
    deployed = [m for m, state in models if state in ml.LOADED_STATES]
    for model_id in deployed:
        cluster.request("POST", ml.path(ml.MODELS, model_id, "_undeploy"))
        step(f"undeployed model {model_id}")
    try:
        cluster.request("PUT", ml.path(ml.CONNECTORS, connector_id), body={"credential": dict(cred.values)})
    except OsRerankError:
        for model_id in deployed:
            try:
                deploy_model(cluster, model_id, **waits)
                step(f"deployed model {model_id} again with its old credentials")
            except OsRerankError as exc:
                step(f"could not deploy model {model_id} again: {exc.message}")
        raise
    kind = "role ARN" if "roleArn" in cred.values else ("temporary keys" if cred.temporary else "keys")
    step(f"updated the credential of connector {connector_id} ({kind})")
    # Models that were not deployed stay that way unless none was: then one is deployed so it can be verified.
    to_deploy = deployed or list(model_ids[:1])
    for model_id in to_deploy:
        deploy_model(cluster, model_id, **waits)
        step(f"deployed model {model_id}")
    verified = False
    if verify is not None and to_deploy:
        verify(cluster, config, to_deploy[0])
        verified = True
        step(f"verified: a predict through model {to_deploy[0]} reached the endpoint")
    return RotateResult(connector_id, model_ids, kind, verified, tuple(steps))
