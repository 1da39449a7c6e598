"""Least privilege on the real secured 2.19.1 node: a user holding exactly the role `render --what role` prints runs
every command; a missing permission is named by the command that needs it; a user with no rights is told all at once.

The admin's part (settings, the user, its role and mapping) goes through the security plugin's REST API, with TLS
verified against the node's CA; no password reaches any output.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Backend, RealClusters, start_real_backend
from tests.support.security import Admin

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

OPERATOR = "os-rerank-test-operator"
ROLE = "os_rerank_test_operator"


@pytest.fixture
def secured(real_clusters: RealClusters, tmp_path: Path, aws_test_env: None) -> Iterator[tuple[Backend, Admin]]:
    for backend in start_real_backend(real_clusters, "real-secure", tmp_path):
        admin = Admin(backend.environ)
        yield backend, admin
        admin("DELETE", f"/_plugins/_security/api/rolesmapping/{ROLE}")
        admin("DELETE", f"/_plugins/_security/api/roles/{ROLE}")
        admin("DELETE", f"/_plugins/_security/api/internalusers/{OPERATOR}")


def _operator(backend: Backend, admin: Admin, role: dict[str, Any]) -> dict[str, str]:
    """The environment of a new internal user mapped to `role` (and to nothing else)."""
    password = "Op-" + secrets.token_urlsafe(12) + "9!a"
    assert admin("PUT", f"/_plugins/_security/api/internalusers/{OPERATOR}", {"password": password})[0] in (200, 201)
    assert admin("PUT", f"/_plugins/_security/api/roles/{ROLE}", role)[0] in (200, 201)
    assert admin("PUT", f"/_plugins/_security/api/rolesmapping/{ROLE}", {"users": [OPERATOR]})[0] in (200, 201)
    return {**backend.environ, "OPENSEARCH_USERNAME": OPERATOR, "OPENSEARCH_PASSWORD": password}


def _printed_role(backend: Backend, config: Path) -> dict[str, Any]:
    code, out, err = backend.run("render", "--config", str(config), "--what", "role")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["# role", "PUT /_plugins/_security/api/roles/os_rerank_operator"]
    return dict(json.loads("\n".join(lines[2:])))


def _admin_settings(backend: Backend, admin: Admin, config: Path) -> None:
    """The admin's step: the settings body the plan shows (merged with the node's list), applied as admin."""
    code, plan, err = backend.run_json("plan", "--config", str(config))
    assert code == 0, err
    action = next(a for a in plan["actions"] if a["resource"] == "settings")
    if action["body"]:
        assert admin("PUT", "/_cluster/settings", action["body"])[0] == 200


def _as(backend: Backend, environ: dict[str, str], *argv: str) -> tuple[int, str, str]:
    saved = backend.environ
    backend.environ = environ
    try:
        code, out, err = backend.run(*argv)
    finally:
        backend.environ = saved
    for secret in (environ["OPENSEARCH_PASSWORD"], saved["OPENSEARCH_PASSWORD"]):
        assert secret not in out and secret not in err
    return code, out, err


def _eval_files(tmp_path: Path) -> tuple[str, ...]:
    queries = tmp_path / "q.tsv"
    queries.write_text("cap\tWhat is the capital of the United States?\n", encoding="utf-8")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("cap 0 seed-3 2\ncap 0 seed-4 0\n", encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "seed-3", "passage_text": "Washington, D.C. is the capital."}\n'
                      '{"id": "seed-4", "passage_text": "Capital punishment."}\n', encoding="utf-8")
    return ("--queries", str(queries), "--qrels", str(qrels), "--corpus", str(corpus), "--depths", "2")


def test_the_printed_role_runs_every_command(secured: tuple[Backend, Admin], tmp_path: Path) -> None:
    backend, admin = secured
    config = backend.config()
    _admin_settings(backend, admin, config)
    operator = _operator(backend, admin, _printed_role(backend, config))
    c = ("--config", str(config))
    setups = 0
    for argv in (("plan", *c), ("setup", *c), ("setup", *c), ("search", *c, "capital"), ("verify", *c),
                 ("status", *c), ("eval", *c, *_eval_files(tmp_path)), ("rotate-credentials", *c),
                 ("teardown", *c)):
        code, out, err = _as(backend, operator, *argv)
        assert code == 0, (argv, out, err)
        if argv[0] == "setup":
            setups += 1
            if setups == 2:  # the operator's second setup finds everything in place
                assert "No changes. The cluster already matches the config (0 writes)." in out, out


@pytest.mark.parametrize(("command", "removed"), [
    ("setup", "cluster:admin/search/pipeline/put"),  # probed up front: nothing written
    ("setup", "cluster:admin/opensearch/ml/register_model"),  # not probeable: named by the 403 itself
    ("search", "indices:data/read/search"),
])
def test_a_role_without_one_permission_fails_the_command_that_needs_it(
        secured: tuple[Backend, Admin], command: str, removed: str) -> None:
    backend, admin = secured
    config = backend.config()
    _admin_settings(backend, admin, config)
    role = _printed_role(backend, config)
    c = ("--config", str(config))
    if command != "setup":
        assert _as(backend, _operator(backend, admin, role), "setup", *c)[0] == 0
    role["cluster_permissions"] = [p for p in role["cluster_permissions"] if p != removed]
    for entry in role["index_permissions"]:
        entry["allowed_actions"] = [p for p in entry["allowed_actions"] if p != removed]
    operator = _operator(backend, admin, role)
    code, out, err = _as(backend, operator, command, *c, *(["capital"] if command == "search" else []))
    assert code == 4, (out, err)
    assert removed in err and "os-rerank render --what role" in err and "credentials" not in err


def test_a_user_with_no_rights_hears_everything_missing_at_once(secured: tuple[Backend, Admin]) -> None:
    backend, admin = secured
    config = backend.config()
    operator = _operator(backend, admin, {"cluster_permissions": [], "index_permissions": []})
    code, out, err = _as(backend, operator, "plan", "--config", str(config))
    assert (code, out) == (4, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"os-rerank: error: {OPERATOR} (roles: ") and "lacks" in lines[0]
    assert "nothing was written" in lines[0]
    for action in ("cluster:monitor/main", "cluster:admin/opensearch/ml/connectors/search",
                   "cluster:admin/search/pipeline/put", "cluster:admin/opensearch/ml/deploy_model",
                   "indices:admin/get", "indices:admin/create"):
        assert any(action in line for line in lines), action
    assert "render --what role" in lines[-1]
    assert admin("GET", "/_cat/indices/os-rerank-lock-*?format=json")[1] == []


def test_an_operator_who_finds_the_settings_wrong_stops_before_any_write(secured: tuple[Backend, Admin]) -> None:
    backend, admin = secured
    config = backend.config()  # the fixture's teardown (as admin) removed this URL's trusted-endpoint entry
    operator = _operator(backend, admin, _printed_role(backend, config))
    code, out, err = _as(backend, operator, "setup", "--config", str(config))
    assert code == 4, (out, err)
    assert "the connector settings need an admin" in err and "finished before it stopped: nothing" in err
    assert "an admin applies PUT /_cluster/settings" in err
    index = json.loads(config.read_text(encoding="utf-8"))["index"]["name"]
    assert admin("GET", f"/{index}")[0] == 404
    assert admin("GET", "/_cat/indices/os-rerank-lock-*?format=json")[1] == []


ACCESS_SETTINGS = ("plugins.ml_commons.model_access_control_enabled",
                   "plugins.ml_commons.connector_access_control_enabled")


def test_an_operator_with_the_printed_role_runs_private_access_control(secured: tuple[Backend, Admin]) -> None:
    """connector.access and model.access private: the operator owns both, so setup, search (predict through the
    private connector and model group) and a second setup with 0 writes work with exactly the printed role."""
    backend, admin = secured
    config = backend.config(connector={"access": {"mode": "private"}}, model={"access": {"mode": "private"}})
    try:
        _admin_settings(backend, admin, config)
        settings = admin("GET", "/_cluster/settings?flat_settings=true")[1]["persistent"]
        assert all(settings.get(s) == "true" for s in ACCESS_SETTINGS), settings
        operator = _operator(backend, admin, _printed_role(backend, config))
        c = ("--config", str(config))
        outs, errs = [], []
        for argv in (("setup", *c), ("search", *c, "capital"), ("setup", *c), ("teardown", *c)):
            code, out, err = _as(backend, operator, *argv)
            assert code == 0, (argv, out, err)
            outs.append(out)
            errs.append(err)
        assert "capital" in outs[1].lower()
        assert "No changes. The cluster already matches the config (0 writes)." in outs[2], outs[2]
        assert "connector exists and matches (access private)" in errs[2]  # progress, on stderr
    finally:  # the node is shared by the session: access control goes back to its default
        assert admin("PUT", "/_cluster/settings", {"persistent": dict.fromkeys(ACCESS_SETTINGS)})[0] == 200
