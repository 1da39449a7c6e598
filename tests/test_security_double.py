"""Least privilege on the double's security layer (tests/fakes/security.py, recorded from a 2.19.1 node): the fast
twin of tests/test_security_real.py, where removing each one permission of the printed role is affordable."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from os_rerank.config import load_config
from os_rerank.provision.permissions import role_body
from tests.backends import Backend

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

OPERATOR = "operator"
ADMIN = "admin"


def _setup_double(backend: Backend, role: Callable[[Path], dict[str, Any] | None],
                  **sections: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The double with the security plugin, an admin who applied the settings, and an operator holding `role`."""
    config = backend.config(opensearch={"url": backend.url, "timeout": 20, "auth": {"type": "basic",
                                                                                    "username": ADMIN}}, **sections)
    security = backend.double.enable_security()
    security.add_user(ADMIN, backend.environ["OPENSEARCH_PASSWORD"], all_access=True)
    security.add_user(OPERATOR, "operator-secret-Qx4", role(config))
    code, plan, err = backend.run_json("plan", "--config", str(config))  # the admin's step: settings
    assert code == 0, err
    body = next(a for a in plan["actions"] if a["resource"] == "settings")["body"]
    request = urllib.request.Request(backend.url + "/_cluster/settings", data=json.dumps(body or {}).encode(),
                                     method="PUT", headers={"content-type": "application/json",
                                                            "authorization": _basic(ADMIN, backend)})
    if body:
        urllib.request.urlopen(request, timeout=10).close()
    operator = {**backend.environ, "OPENSEARCH_USERNAME": OPERATOR, "OPENSEARCH_PASSWORD": "operator-secret-Qx4"}
    return config, operator


def _basic(name: str, backend: Backend) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{name}:{backend.environ['OPENSEARCH_PASSWORD']}".encode()).decode()


def _as(backend: Backend, environ: dict[str, str], *argv: str) -> tuple[int, str, str]:
    saved, backend.environ = backend.environ, environ
    try:
        code, out, err = backend.run(*argv)
    finally:
        backend.environ = saved
    assert environ["OPENSEARCH_PASSWORD"] not in out + err
    return code, out, err


def _commands(config: Path, tmp_path: Path) -> list[tuple[str, ...]]:
    queries = tmp_path / "q.tsv"
    queries.write_text("cap\tWhat is the capital of the United States?\n", encoding="utf-8")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("cap 0 seed-3 2\n", encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "seed-3", "passage_text": "Washington, D.C. is the capital."}\n', encoding="utf-8")
    c = ("--config", str(config))
    return [("setup", *c, "--no-verify"), ("setup", *c, "--no-verify"), ("search", *c, "capital"), ("verify", *c),
            ("status", *c),
            ("eval", *c, "--queries", str(queries), "--qrels", str(qrels), "--corpus", str(corpus), "--depths", "2"),
            ("rotate-credentials", *c), ("promote", *c, "--allow-failing-searches"), ("teardown", *c)]


def _printed(config: Path) -> dict[str, Any]:
    return role_body(load_config(config, {"OPENSEARCH_PASSWORD": "x"}))


def test_the_printed_role_runs_every_command(fake_backend: Backend, tmp_path: Path) -> None:
    config, operator = _setup_double(fake_backend, _printed)
    for argv in _commands(config, tmp_path):
        code, out, err = _as(fake_backend, operator, *argv)
        assert code == 0, (argv, out, err)


def _without(role: dict[str, Any], permission: tuple[str | None, str]) -> dict[str, Any]:
    index, action = permission
    out = json.loads(json.dumps(role))
    if index is None:
        out["cluster_permissions"].remove(action)
    for entry in out["index_permissions"]:
        if entry["index_patterns"] == [index]:
            entry["allowed_actions"].remove(action)
    return out


# The commands _commands runs: each permission of their role must be needed by one of them.
SEQUENCE = ("setup", "search", "verify", "status", "eval", "rotate-credentials", "promote", "teardown")


def _permissions() -> list[tuple[str | None, str]]:
    role = role_body(load_config(Path(__file__).parent.parent / "config.example.yaml", {}), SEQUENCE)
    out: list[tuple[str | None, str]] = [(None, a) for a in role["cluster_permissions"]]
    out += [(e["index_patterns"][0], a) for e in role["index_permissions"] for a in e["allowed_actions"]]
    return out


@pytest.mark.parametrize("permission", _permissions(), ids=lambda p: f"{p[0] or 'cluster'}:{p[1]}")
def test_without_any_one_permission_a_command_fails_naming_it(fake_backend: Backend, tmp_path: Path,
                                                             permission: tuple[str | None, str]) -> None:
    example = load_config(Path(__file__).parent.parent / "config.example.yaml", {})
    index, action = permission
    config, operator = _setup_double(fake_backend, lambda c: _without(role_body(load_config(c, {}), SEQUENCE),
                                                                       permission),
                                     index={"name": example.index.name})
    for argv in _commands(config, tmp_path):
        code, out, err = _as(fake_backend, operator, *argv)
        if code != 0:
            assert code == 4, (argv, out, err)
            assert action in out + err and "render --what role" in out + err, (argv, out, err)
            assert "check the credentials" not in err
            return
    pytest.fail(f"every command passed without {action} on {index or 'the cluster'}: the role need not hold it")


def test_a_user_with_no_rights_hears_everything_missing_at_once(fake_backend: Backend) -> None:
    config, operator = _setup_double(fake_backend, lambda c: None)
    code, out, err = _as(fake_backend, operator, "plan", "--config", str(config))
    assert (code, out) == (4, "")
    assert f"{OPERATOR} (roles: own_index, os_rerank_operator; backend roles: none) lacks" in err
    assert err.count("\n") > 20 and "render --what role" in err.splitlines()[-1]


def test_an_operator_who_finds_the_settings_wrong_stops_before_any_write(fake_backend: Backend) -> None:
    config = fake_backend.config(opensearch={"url": fake_backend.url, "timeout": 20,
                                             "auth": {"type": "basic", "username": OPERATOR}})
    security = fake_backend.double.enable_security()
    security.add_user(OPERATOR, "operator-secret-Qx4", _printed(config))
    operator = {**fake_backend.environ, "OPENSEARCH_USERNAME": OPERATOR, "OPENSEARCH_PASSWORD": "operator-secret-Qx4"}
    code, out, err = _as(fake_backend, operator, "setup", "--config", str(config))
    assert code == 4, (out, err)
    assert "the connector settings need an admin" in err and "finished before it stopped: nothing" in err
    assert "an admin applies PUT /_cluster/settings {\"persistent\": {\"plugins.ml_commons." in err
    assert [r for r in fake_backend.double.writes() if r.status < 400] == []
