"""ML Commons model access control (model.access): the admin's settings include it, plan shows the access, setup
creates the model group with it, and a second setup reconciles a change with one write. On the double (with its
security plugin) and on the secured real node, as admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Backend, start_fake_backend, start_real_backend
from tests.support.security import Admin

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

SETTING = "plugins.ml_commons.model_access_control_enabled"
CONNECTOR_SETTING = "plugins.ml_commons.connector_access_control_enabled"


@pytest.fixture(params=["fake", "real-secure"])
def secured_backend(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None) -> Iterator[Backend]:
    if request.param == "fake":
        for backend in start_fake_backend(request.getfixturevalue("mlcommons_glue"), tmp_path):
            backend.double.enable_security().add_user("admin", backend.environ["OPENSEARCH_PASSWORD"],
                                                      all_access=True)
            backend.environ["OPENSEARCH_USERNAME"] = "admin"
            yield backend
        return
    for backend in start_real_backend(request.getfixturevalue("real_clusters"), "real-secure", tmp_path):
        try:
            yield backend
        finally:  # the node is shared by the session: model access control goes back to its default
            assert Admin(backend.environ)("PUT", "/_cluster/settings", {"persistent": {
                SETTING: None, CONNECTOR_SETTING: None}})[0] == 200


def _action(plan: dict[str, Any], resource: str) -> dict[str, Any]:
    return next(a for a in plan["actions"] if a["resource"] == resource)


def test_access_is_planned_created_and_reconciled(secured_backend: Backend) -> None:
    backend = secured_backend
    restricted = backend.config(model={"access": {"mode": "restricted", "backend_roles": ["admin"]}})
    code, plan, err = backend.run_json("plan", "--config", str(restricted))
    assert code == 0, err
    assert _action(plan, "settings")["body"]["persistent"][SETTING] is True
    group = _action(plan, "model group")
    assert group["kind"] == "create" and "access restricted to backend roles admin" in group["reason"]
    assert group["body"]["access_mode"] == "restricted" and group["body"]["backend_roles"] == ["admin"]
    code, result, err = backend.run_json("setup", "--config", str(restricted), "--no-verify")
    assert code == 0, err
    code, plan, err = backend.run_json("plan", "--config", str(restricted))
    assert _action(plan, "model group")["reason"] == "model group exists with access restricted to backend roles admin"
    assert plan["summary"].startswith("No changes")

    public = backend.config(model={"access": {"mode": "public"}})
    code, plan, _ = backend.run_json("plan", "--config", str(public))
    group = _action(plan, "model group")
    assert (group["kind"], group["reason"], group["body"]) == (
        "update", "access differs: restricted to backend roles admin -> public", {"access_mode": "public"})
    code, result, err = backend.run_json("setup", "--config", str(public), "--no-verify")
    assert (code, result["writes"]) == (0, 1), err
    code, result, err = backend.run_json("setup", "--config", str(public), "--no-verify")
    assert (code, result["writes"]) == (0, 0), err


def test_connector_access_is_planned_created_and_reconciled(secured_backend: Backend) -> None:
    backend = secured_backend
    restricted = backend.config(connector={"access": {"mode": "restricted", "backend_roles": ["admin"]}})
    code, plan, err = backend.run_json("plan", "--config", str(restricted))
    assert code == 0, err
    assert _action(plan, "settings")["body"]["persistent"][CONNECTOR_SETTING] is True
    assert SETTING not in _action(plan, "settings")["body"]["persistent"]  # the model group's is another setting
    connector = _action(plan, "connector")
    assert (connector["kind"], connector["reason"]) == (
        "create", "no connector with this name (access restricted to backend roles admin)")
    assert (connector["body"]["access_mode"], connector["body"]["backend_roles"]) == ("restricted", ["admin"])
    code, result, err = backend.run_json("setup", "--config", str(restricted), "--no-verify")
    assert code == 0, err
    code, plan, err = backend.run_json("plan", "--config", str(restricted))
    assert _action(plan, "connector")["reason"] == \
        "connector exists and matches (access restricted to backend roles admin)"
    assert plan["summary"].startswith("No changes")

    public = backend.config(connector={"access": {"mode": "public"}})
    code, plan, _ = backend.run_json("plan", "--config", str(public))
    connector = _action(plan, "connector")
    assert connector["kind"] == "update"
    assert connector["reason"].startswith("connector differs: access (restricted to backend roles admin -> public)")
    # an empty list: ML Commons keeps the roles an update does not send, and a public connector has none
    assert (connector["body"]["access_mode"], connector["body"]["backend_roles"]) == ("public", [])
    code, result, err = backend.run_json("setup", "--config", str(public), "--no-verify")
    # ML Commons refuses any connector update while a deployed model uses it: undeploy, update, deploy
    assert (code, result["writes"]) == (0, 3), err
    code, plan, _ = backend.run_json("plan", "--config", str(public))
    assert _action(plan, "connector")["reason"] == "connector exists and matches (access public)"
    code, result, err = backend.run_json("setup", "--config", str(public), "--no-verify")
    assert (code, result["writes"]) == (0, 0), err


def test_the_connector_access_apply_sends_is_the_plans(fake_backend: Backend) -> None:
    fake_backend.double.enable_security().add_user("admin", fake_backend.environ["OPENSEARCH_PASSWORD"],
                                                   all_access=True)
    fake_backend.environ["OPENSEARCH_USERNAME"] = "admin"
    for mode, roles in (("private", []), ("restricted", ["admin", "search"])):
        config = fake_backend.config(connector={"access": {"mode": mode, "backend_roles": roles}})
        code, plan, err = fake_backend.run_json("plan", "--config", str(config))
        assert code == 0, err
        fake_backend.double.clear_requests()
        code, _, err = fake_backend.run_json("setup", "--config", str(config), "--no-verify")
        assert code == 0, err
        sent = next(json.loads(r.body) for r in fake_backend.double.writes()  # a create, then an update
                    if r.path.startswith("/_plugins/_ml/connectors/") and "permission-probe" not in r.path)
        planned = _action(plan, "connector")["body"]
        assert {k: v for k, v in sent.items() if k != "credential"} == \
            {k: v for k, v in planned.items() if k != "credential"}
        assert (sent["access_mode"], sent["backend_roles"]) == (mode, roles)


def test_no_connector_access_sends_no_access_fields(fake_backend: Backend) -> None:
    code, plan, err = fake_backend.run_json("plan", "--config", str(fake_backend.config()))
    assert code == 0, err
    assert not {"access_mode", "backend_roles", "add_all_backend_roles"} & set(_action(plan, "connector")["body"])
    assert CONNECTOR_SETTING not in json.dumps(plan)


@pytest.mark.parametrize("section", ["model", "connector"])
def test_access_without_the_security_plugin_is_refused_before_anything(fake_backend: Backend, section: str) -> None:
    fake_backend.double.remove_plugin("opensearch-security")
    config = fake_backend.config(**{section: {"access": {"mode": "private"}}})
    code, out, err = fake_backend.run("setup", "--config", str(config))
    assert (code, out) == (4, "")
    assert f"{section}.access needs the security plugin" in err
    assert fake_backend.double.writes() == []


@pytest.mark.parametrize(("access", "message"), [
    ({"mode": "restricted"}, "mode restricted needs backend_roles"),
    ({"mode": "public", "backend_roles": ["x"]}, "backend_roles only go with mode restricted, not public"),
])
def test_bad_access_is_a_config_error(tmp_path: Path, access: dict[str, Any], message: str) -> None:
    from os_rerank.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"opensearch": {"url": "http://127.0.0.1:9"}, "sagemaker": {
        "region": "us-west-2", "endpoint_name": "e"}, "model": {"access": access}}), encoding="utf-8")
    import io

    err = io.StringIO()
    assert main(["validate", "--config", str(path)], environ={}, stdout=io.StringIO(), stderr=err) == 2
    assert message in err.getvalue()


def test_a_connector_update_keeps_the_backend_roles_it_is_not_sent(secured_backend: Backend) -> None:
    """Why the rendered body always carries backend_roles: 2.19.1 takes an update's access fields unchecked and keeps
    what it is not sent (HttpConnector.update), so a mode alone leaves a public connector with roles."""
    from os_rerank.cluster import connect
    from os_rerank.config import load_config
    from os_rerank.provision.render import connector_body

    backend = secured_backend
    path = backend.config(connector={"access": {"mode": "restricted", "backend_roles": ["admin"]}})
    code, _, err = backend.run_json("setup", "--config", str(path), "--no-verify")  # the settings, as admin
    assert code == 0, err
    config = load_config(path, backend.environ)
    cluster = connect(config)
    body = {**connector_body(config, version=(2, 19, 1), credential={"access_key": "a", "secret_key": "b"}),
            "name": "os-rerank access probe"}
    connector_id = cluster.request("POST", "/_plugins/_ml/connectors/_create", body=body)["connector_id"]
    url = f"/_plugins/_ml/connectors/{connector_id}"
    try:
        got = cluster.request("GET", url)
        assert (got["access"], got["backend_roles"], got["owner"]["name"]) == ("restricted", ["admin"], "admin")
        cluster.request("PUT", url, body={"access_mode": "public"})
        got = cluster.request("GET", url)
        assert (got["access"], got["backend_roles"]) == ("public", ["admin"])
        cluster.request("PUT", url, body={"access_mode": "public", "backend_roles": []})
        assert cluster.request("GET", url)["backend_roles"] == []
    finally:
        cluster.request("DELETE", url)
