"""rotate-credentials through the CLI on every backend: the connector's keys expire, fresh ones are put in.

On a real node this found what the double hid: ML Commons' model index maps `connector_id` as analyzed text, so
the models on a connector are found through `connector_id.keyword` (mlcommons.models_using).
"""

from __future__ import annotations

import pytest

from tests.backends import ACCESS_KEY, SECRET_KEY, Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

NEW_KEY, NEW_SECRET = "AKIDROTATEDFAKEKEY02", "rotated-secret-Hy3Nq8"


def test_rotation_puts_fresh_keys_in_the_connector_and_verify_passes_again(backend: Backend,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(backend.config())
    code, report, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    model_id, connector_id = report["ids"]["model"], report["ids"]["connector"]
    endpoint = backend.endpoint
    endpoint.credentials = {NEW_KEY: NEW_SECRET}  # the old keys stop working
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", NEW_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", NEW_SECRET)
    try:
        code, _, err = backend.run("verify", "--config", config)
        assert code == 6 and "predict through OpenSearch failed" in err  # the connector still signs with the old
        code, result, err = backend.run_json("rotate-credentials", "--config", config)
        assert code == 0, err
        assert result == {
            "connector_id": connector_id, "model_ids": [model_id], "credential": "keys", "verified": True,
            "steps": [f"connector {connector_id}: 1 model(s) use it", f"undeployed model {model_id}",
                      f"updated the credential of connector {connector_id} (keys)", f"deployed model {model_id}",
                      f"verified: a predict through model {model_id} reached the endpoint"]}
        code, out, err = backend.run("verify", "--config", config)
        assert (code, out.splitlines()[-1]) == (0, "verify: ok"), err
        for text in (out, err):
            assert NEW_SECRET not in text and SECRET_KEY not in text and NEW_KEY not in text
    finally:
        endpoint.credentials = {ACCESS_KEY: SECRET_KEY}
