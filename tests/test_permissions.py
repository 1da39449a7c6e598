"""The permission table: the role it prints, the 403 it explains (recorded from a 2.19.1 node)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from os_rerank.config import load_config
from os_rerank.provision import permissions as perm

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

DATA = Path(__file__).parent / "data" / "opensearch" / "security_403.json"
EXAMPLE = Path(__file__).parent.parent / "config.example.yaml"


def test_the_role_comes_from_the_table_and_leaves_settings_to_an_admin() -> None:
    config = load_config(EXAMPLE, {})
    role = perm.role_body(config)
    declared = {a for n in perm.REQUESTS if perm.applies(n, config) and not n.indices for a in n.actions}
    assert set(role["cluster_permissions"]) == declared
    assert "cluster:admin/opensearch/ml/update_model_group" not in declared  # only with model.access
    with_access = config.model_copy(update={"model": config.model.model_copy(update={
        "access": {"mode": "public"}})})
    assert "cluster:admin/opensearch/ml/update_model_group" in perm.role_body(with_access)["cluster_permissions"]
    assert "cluster:admin/settings/update" not in role["cluster_permissions"]
    patterns = {e["index_patterns"][0]: set(e["allowed_actions"]) for e in role["index_permissions"]}
    assert set(patterns) == {config.index.name, f"{config.index.name}-eval", "os-rerank-lock-*", "*"}
    assert patterns["*"] == {"indices:monitor/settings/get"}  # teardown's GET /_all/_settings: read-only, on all
    assert "indices:data/write/index" in patterns[config.index.name]
    assert not any("*" in a for a in role["cluster_permissions"])  # least privilege: no wildcard actions


def test_only_status_reads_need_no_write_permission() -> None:
    config = load_config(EXAMPLE, {})
    reads = perm.role_body(config, ("status",))
    assert not [a for a in reads["cluster_permissions"] if a.endswith(("delete", "put", "create_connector"))]


def test_every_row_says_why_and_paths_match_one_row() -> None:
    for need in perm.REQUESTS:
        assert need.step and need.commands and set(need.commands) <= set(perm.ALL_COMMANDS)
    assert perm.find_need("GET", "/_plugins/_ml/models/abc").actions == ("cluster:admin/opensearch/ml/models/get",)
    assert perm.find_need("POST", "/_plugins/_ml/models/_search").step == "find the model by name"
    assert perm.find_need("POST", "/_bulk?refresh=true") is not None
    assert perm.find_need("GET", "/my-index/_count").actions == ("indices:data/read/search",)
    assert perm.find_need("GET", "/_nodes/stats") is None


def test_a_recorded_403_names_action_user_step_and_role_command() -> None:
    recorded = json.loads(DATA.read_text(encoding="utf-8"))
    reason = recorded["denied"]["error"]["reason"]
    assert perm.denied_actions(reason) == (["cluster:admin/opensearch/ml/connectors/get"], "rrk-nobody")
    assert perm.denied_actions(recorded["denied_bulk_item_reason"])[0] == [
        "indices:data/write/bulk[s]", "indices:data/write/index"]
    fix = perm.explain_denied("GET", "/_plugins/_ml/connectors/xyz", reason)
    assert fix.startswith("user rrk-nobody lacks cluster:admin/opensearch/ml/connectors/get, needed to read the "
                          "connector: ")
    assert "os-rerank render --what role" in fix and "credentials" not in fix
    assert "on index my-test-data" in perm.explain_denied("PUT", "/my-test-data", reason)
