"""Version-dependent behaviour, FAKE ONLY (the double can be told to be another OpenSearch version)."""

from __future__ import annotations

import pytest

from tests.backends import Backend

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")


def test_2_13_gets_millisecond_timeouts_and_no_private_ip_setting(fake_backend: Backend) -> None:
    fake_backend.double.set_version("2.13.0")
    config = str(fake_backend.config())
    code, report, err = fake_backend.run_json("setup", "--config", config)
    assert (code, err) == (0, "")
    settings = report["plan"]["actions"][0]
    assert list(settings["body"]["persistent"]) == ["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert "has no plugins.ml_commons.connector.private_ip_enabled" in settings["reason"]
    connector = next(iter(fake_backend.double.state.connectors.values()))
    assert connector["client_config"]["read_timeout"] == 30000
    assert report["verify"]["passed"] is True
    code, again, err = fake_backend.run_json("setup", "--config", config)
    assert (code, again["writes"]) == (0, 0)


def test_older_than_2_12_is_refused_with_the_reason(fake_backend: Backend) -> None:
    fake_backend.double.set_version("2.11.1")
    code, out, err = fake_backend.run("setup", "--config", str(fake_backend.config()))
    assert (code, out) == (4, "")
    assert err.splitlines() == [
        "os-rerank: error: OpenSearch 2.11.1 cannot rerank with a remote model: ML Commons runs remote "
        "text_similarity models and neural-search has the rerank processor only from 2.12",
        "os-rerank: error: fix: upgrade the cluster to OpenSearch 2.12 or newer",
    ]
    assert fake_backend.double.writes() == []


def test_settings_keep_every_default_regex_and_add_ours(fake_backend: Backend) -> None:
    code, report, err = fake_backend.run_json("setup", "--config", str(fake_backend.config()), "--no-verify")
    assert (code, err) == (0, "")
    settings = fake_backend.double.state.persistent
    key = "plugins.ml_commons.trusted_connector_endpoints_regex"
    defaults = list(fake_backend.double.state.default_setting(key))
    assert settings[key][:-1] == defaults and len(defaults) > 3
    assert settings[key][-1].startswith(r"^http://127\.0\.0\.1:") and settings[key][-1].endswith("/invocations$")
    assert settings["plugins.ml_commons.connector.private_ip_enabled"] == "true"
