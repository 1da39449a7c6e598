"""Put fresh AWS credentials into the connector: undeploy its models, update the connector, deploy, verify.

ML Commons refuses to update a connector while a model that uses it is deployed (400 "... models are still using
this connector, please undeploy the models first"), so a rotation is four steps. When the update fails after the
undeploy, the models are deployed again with the credentials they had, and the error is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..credentials import ConnectorCredential
from ..errors import OsRerankError, VerifyError
from ..events import OnEvent, ignore, note
from . import lock

# verify(cluster, config, model_id) raises when the roundtrip fails; default: `predict_roundtrip`.
Verify = Callable[[Cluster, Config, str], None]

POLL_SECONDS = ml.DEPLOY_POLL_SECONDS
TIMEOUT_SECONDS = ml.DEPLOY_TIMEOUT_SECONDS


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


def find_models(cluster: Cluster, connector_id: str) -> list[tuple[str, str]]:
    """(model id, model_state) of every model registered on the connector, the state read by id (realtime)."""
    return [(m.id, m.model_state) for m in ml.models_using(cluster, "connector_id", connector_id)]


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
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> RotateResult:
    """Undeploy the connector's models, PUT the new `credential`, deploy them again and verify one."""
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(text)
        on_event(note(text))

    def deploy(model_id: str) -> None:
        ml.deploy(cluster, model_id, timeout=timeout, poll=poll, command="rotate-credentials",
                  context=" after the credential update", timeout_flag=False)

    with lock.held(cluster, config, "rotate-credentials", on_event):
        return _rotate(cluster, config, cred, steps, step, verify, deploy)


def _rotate(cluster: Cluster, config: Config, cred: ConnectorCredential, steps: list[str],
            step: Callable[[str], None], verify: Verify | None, deploy: Callable[[str], None]) -> RotateResult:
    connector_id = ml.find_one(cluster, ml.CONNECTORS, config.connector.name,
                               missing_fix="run `os-rerank setup` first (or set connector.name to the connector's "
                               "name)").id
    models = find_models(cluster, connector_id)
    model_ids = tuple(m for m, _ in models)
    step(f"connector {connector_id}: {len(models)} model(s) use it")
    deployed = [m for m, state in models if state in ml.LOADED_STATES]
    for model_id in deployed:
        ml.undeploy(cluster, model_id)
        step(f"undeployed model {model_id}")
    try:
        cluster.request("PUT", ml.path(ml.CONNECTORS, connector_id), body={"credential": dict(cred.values)})
    except OsRerankError:
        for model_id in deployed:
            try:
                deploy(model_id)
                step(f"deployed model {model_id} again with its old credentials")
            except OsRerankError as exc:
                step(f"could not deploy model {model_id} again: {exc.message}")
        raise
    kind = "role ARN" if "roleArn" in cred.values else ("temporary keys" if cred.temporary else "keys")
    step(f"updated the credential of connector {connector_id} ({kind})")
    # Models that were not deployed stay that way unless none was: then one is deployed so it can be verified.
    to_deploy = deployed or list(model_ids[:1])
    for model_id in to_deploy:
        deploy(model_id)
        step(f"deployed model {model_id}")
    verified = False
    if verify is not None and to_deploy:
        verify(cluster, config, to_deploy[0])
        verified = True
        step(f"verified: a predict through model {to_deploy[0]} reached the endpoint")
    return RotateResult(connector_id, model_ids, kind, verified, tuple(steps))
