"""The plan is what apply sends: every write of a setup equals, byte for byte, a request of the plan it printed
once its placeholders (ids created earlier in the run, the credential) are filled in; nothing else is written.

Run on every backend for a fresh setup, an update in place (a connector in use: undeploy, update, deploy again)
and a replace (a new model group: the model is registered again and the pipeline pointed at it); and the same for
the dense first stage (config `embedding`: its connector, model, ingest pipeline, k-NN index, documents and
hybrid pipelines). The writes are
recorded where the cluster client sends them, so the double and the real nodes answer the same question.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from os_rerank.cluster import Call, Cluster, connect
from os_rerank.config import load_config
from os_rerank.credentials import connector_credential
from os_rerank.provision.dense import RESOURCES
from os_rerank.provision.setup import SetupResult, run_setup
from tests.backends import ACCESS_KEY, SECRET_KEY, Backend
from tests.fakes.embedder import EmbeddingEndpoint
from tests.support.dense import dense_config

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

Sent = tuple[str, str, str | None, str | None]  # method, path, body text, content type (with a body)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Every write the cluster client completed (lock bookkeeping aside; a refused, retried write is not one)."""
    record: list[Sent] = []
    request = Cluster.request

    def recorded(self: Cluster, method: str, path: str, *, body: Any = None, content_type: str = "application/json",
                 bookkeeping: bool = False, **kwargs: Any) -> Any:
        result = request(self, method, path, body=body, content_type=content_type, bookkeeping=bookkeeping,
                         **kwargs)
        if Call(method, path, 200, bookkeeping).is_write:
            assert body is None or isinstance(body, str), f"{method} {path}: a write whose body is not the plan's text"
            record.append((method, path, body, content_type if body is not None else None))
        return result

    monkeypatch.setattr(Cluster, "request", recorded)
    yield record


def _setup(backend: Backend, config_path: Path, sent: list[Sent]) -> SetupResult:
    config = load_config(config_path, backend.environ)
    sent.clear()
    result = run_setup(connect(config), config, connector_credential(config), run_verify=False)
    dense_ids = result.applied.dense_ids
    ids = {"connector": result.applied.connector_id, "model group": result.applied.model_group_id,
           "model": result.applied.model_id, "embedding connector": dense_ids.get("connector"),
           "embedding model": dense_ids.get("model")}
    values = {**{k: v for k, v in ids.items() if v}, "credential": connector_credential(config).values}
    planned = []
    for action in result.plan.actions:
        for request in action.requests:
            filled = request.filled(values)
            text = filled.text()
            planned.append((filled.method, filled.path, text, filled.content_type if text is not None else None))
    assert sent == planned
    assert len(planned) == result.writes
    return result


def test_every_write_is_the_plan_filled_in(backend: Backend, sent: list[Sent]) -> None:
    second = backend.config("second.yaml", connector={"client_config": {"read_timeout": 45}},
                            model={"group": "os-rerank-scenario-2"})
    backend.run("teardown", "--config", str(second))  # a real node keeps what an interrupted run left
    fresh = _setup(backend, backend.config(), sent)
    assert {a.resource: a.kind for a in fresh.plan.actions if a.resource != "settings"} == {
        "connector": "create", "model group": "create", "model": "create", "index": "create", "documents": "create",
        "pipeline": "create"}
    # The plan shows the credential as *** and the ids as (known after apply); the request sent had the real ones.
    connector = fresh.plan.action("connector")
    assert connector is not None and connector.body["credential"] == {"access_key": "***", "secret_key": "***"}
    create = next(b for _, p, b, _ in sent if p.endswith("/connectors/_create"))
    assert ACCESS_KEY in str(create) and SECRET_KEY in str(create)
    assert SECRET_KEY not in json.dumps(fresh.plan.to_dict())

    updated = _setup(backend, backend.config(connector={"client_config": {"read_timeout": 45}}), sent)
    assert {a.resource: a.kind for a in updated.plan.changes} == {"connector": "update"}
    assert [(m, p) for m, p, _, _ in sent] == [
        ("POST", f"/_plugins/_ml/models/{fresh.applied.model_id}/_undeploy"),
        ("PUT", f"/_plugins/_ml/connectors/{fresh.applied.connector_id}"),
        ("POST", f"/_plugins/_ml/models/{fresh.applied.model_id}/_deploy")]

    replaced = _setup(backend, second, sent)
    kinds = {a.resource: a.kind for a in replaced.plan.changes}
    assert kinds == {"model group": "create", "model": "replace", "pipeline": "update"}
    assert replaced.applied.model_id != fresh.applied.model_id

    again = _setup(backend, second, sent)
    assert (again.plan.changes, sent) == ((), [])
    backend.run("teardown", "--config", str(second))


def test_every_dense_write_is_the_plan_filled_in(dense_backend: Backend, embedders: dict[str, EmbeddingEndpoint],
                                                 sent: list[Sent]) -> None:
    backend, embedder = dense_backend, embedders["vector-embedding"]
    config = Path(dense_config(backend, embedder))
    slower = {"connector": {"client_config": {"read_timeout": 45}}}
    updated_config = Path(dense_config(backend, embedder, "updated.yaml", sections=slower))
    moved = Path(dense_config(backend, embedder, "moved.yaml", sections=slower,
                              connector_name="os-rerank scenario embedding 2"))
    for each in (moved, config):  # a real node keeps what an interrupted run left
        backend.run("teardown", "--config", str(each))
    fresh = _setup(backend, config, sent)
    dense = [(a.resource, a.kind) for a in fresh.plan.actions][-7:]
    assert dense == [("embedding connector", "create"), ("embedding model", "create"), ("ingest pipeline", "create"),
                     ("dense index", "create"), ("dense documents", "create"), ("hybrid pipeline", "create"),
                     ("hybrid pipeline", "create")]
    connector = fresh.plan.action("embedding connector")
    assert connector is not None and connector.body["credential"] == {"access_key": "***", "secret_key": "***"}
    assert SECRET_KEY not in json.dumps(fresh.plan.to_dict())
    bodies = {p: b for _, p, b, _ in sent}
    created = [b for _, p, b, _ in sent if p.endswith("/connectors/_create")]
    assert len(created) == 2 and all(SECRET_KEY in str(b) for b in created)
    # The ids created during the run reached the requests that name them.
    assert fresh.applied.dense_ids["model"] in str(bodies["/_ingest/pipeline/os_rerank_scn_embed"])
    assert fresh.applied.model_id in str(bodies["/_search/pipeline/os_rerank_scn_hybrid_rerank"])
    assert sum(1 for m, p, _, t in sent if (m, p, t) == ("POST", "/_bulk?refresh=true", "application/x-ndjson")) == 2
    # What setup prints for them, one line a step.
    ids = fresh.applied.dense_ids
    assert [e.message for e in fresh.applied.steps if e.resource in RESOURCES] == [
        f"embedding connector os-rerank scenario embedding connector created (id {ids['connector']})",
        f"embedding model os-rerank scenario embedding registered (id {ids['model']})",
        f"model {ids['model']} deployed", f"ingest pipeline os_rerank_scn_embed created (model {ids['model']})",
        "k-NN index os-rerank-scenario-dense created",
        "4 documents ingested into os-rerank-scenario-dense through os_rerank_scn_embed",
        "search pipeline os_rerank_scn_hybrid created", "search pipeline os_rerank_scn_hybrid_rerank created"]

    updated = _setup(backend, updated_config, sent)
    assert {(a.resource, a.kind) for a in updated.plan.changes} == {("connector", "update"),
                                                                   ("embedding connector", "update")}
    embedding_model = fresh.applied.dense_ids["model"]
    assert [(m, p) for m, p, _, _ in sent][3:] == [
        ("POST", f"/_plugins/_ml/models/{embedding_model}/_undeploy"),
        ("PUT", f"/_plugins/_ml/connectors/{fresh.applied.dense_ids['connector']}"),
        ("POST", f"/_plugins/_ml/models/{embedding_model}/_deploy")]

    # A new embedding connector: the embedding model is deleted, registered again, and the documents re-embedded.
    replaced = _setup(backend, moved, sent)
    assert [(a.resource, a.kind) for a in replaced.plan.changes] == [
        ("embedding connector", "create"), ("embedding model", "replace"), ("ingest pipeline", "update"),
        ("dense documents", "update")]
    assert ("DELETE", f"/_plugins/_ml/models/{embedding_model}") in [(m, p) for m, p, _, _ in sent]
    assert f"embedding model os-rerank scenario embedding deleted (old id {embedding_model})" in [
        e.message for e in replaced.applied.steps]
    assert replaced.applied.dense_ids["model"] != embedding_model

    again = _setup(backend, moved, sent)
    assert (again.plan.changes, sent) == ((), [])
    for each in (moved, config):
        backend.run("teardown", "--config", str(each))


def test_teardown_sends_what_its_dry_run_printed(backend: Backend, sent: list[Sent]) -> None:
    config = str(backend.config())
    code, _, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    code, plan, err = backend.run_json("teardown", "--config", config, "--dry-run")
    assert (code, err) == (0, "")
    code, out, err = backend.run("teardown", "--config", config, "--dry-run")
    assert (code, err) == (0, "")
    assert "- pipeline os_rerank_scenario to delete" in out and out.endswith("Teardown plan: nothing was sent.\n")
    planned = [(r["method"], r["path"], r["body"]) for a in plan["actions"] for r in a["requests"]]
    assert ("DELETE", "/os-rerank-scenario", None) in planned
    sent.clear()
    code, report, err = backend.run_json("teardown", "--config", config)
    assert code == 0, err
    assert [(m, p, None if b is None else json.loads(b)) for m, p, b, _ in sent] == planned
    assert [s["outcome"] for s in report["steps"] if s["resource"] == "connector"] == ["deleted"]
