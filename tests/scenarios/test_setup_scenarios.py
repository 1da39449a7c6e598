"""Setup, plan, status, verify and teardown through the CLI, once per backend (fake double and real cluster)."""

from __future__ import annotations

from tests.scenarios.conftest import ACCESS_KEY, PASSWORD, SECRET_KEY, Backend


def test_setup_from_empty_then_again_sends_no_writes(backend: Backend) -> None:
    config = str(backend.config())
    code, first, err = backend.run_json("setup", "--config", config)
    assert (code, err) == (0, "")
    assert first["writes"] > 0
    assert first["verify"]["passed"] is True
    kinds = {a["resource"]: a["kind"] for a in first["plan"]["actions"]}
    assert kinds == {"settings": "update", "connector": "create", "model group": "create", "model": "create",
                     "index": "create", "documents": "create", "pipeline": "create"}

    code, out, err = backend.run("setup", "--config", config)
    assert (code, err) == (0, "")
    assert "No changes. The cluster already matches the config (0 writes)." in out
    assert "= connector os-rerank scenario connector: connector exists and matches" in out
    assert "verify: ok" in out
