"""The relevance gate through the CLI on the double with the shipped evaluation set: eval's --fail-under /
--baseline and promote --require-gain (exit 9 when reranking does not pay), and eval's capacity note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from os_rerank.cluster import connect
from os_rerank.config import load_config
from tests.backends import Backend
from tests.support.scenarios import EVAL_ARGS, ROOT

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

# The gain of the lexical stand-in scorer at depth 20 is +0.0546 nDCG@10 (tests/data/golden/eval.txt).


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _config(backend: Backend) -> str:
    config = str(backend.config(pipeline={"ignore_failure": True}))
    code, out, err = backend.run("setup", "--config", config)
    assert code == 0, err
    return config


def test_eval_gate_passes_fails_and_compares_with_a_saved_run(fake_backend: Backend, in_repo: None,
                                                             tmp_path: Path) -> None:
    config = _config(fake_backend)
    code, saved, err = fake_backend.run_json("eval", "--config", config, *EVAL_ARGS, "--depths", "20",
                                             "--target-qps", "5", "--target-p95-ms", "1000")
    assert code == 0, err
    assert saved["capacity"]["depth"] == 20 and saved["capacity"]["instances"] >= 1
    assert saved["capacity"]["line"].startswith("capacity: depth 20 at ")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(saved), encoding="utf-8")

    code, out, err = fake_backend.run("eval", "--config", config, *EVAL_ARGS, "--depths", "20",
                                      "--fail-under", "0.02", "--baseline", str(baseline))
    assert code == 0, err
    assert out.splitlines()[-3:] == [
        "gate: PASS depth 20: ndcg@10 0.5125 -> 0.5671 (+0.0546; required +0.0200)",
        "gate: PASS depth 20: ndcg@10 reranked 0.5671 vs baseline 0.5671 (+0.0000; allowed drop 0.0000)",
        "gate: passed (2 checks)"]

    code, data, err = fake_backend.run_json("eval", "--config", config, *EVAL_ARGS, "--depths", "20",
                                            "--fail-under", "0.1")
    assert code == 9
    assert data["gate"]["passed"] is False
    assert data["gate"]["checks"][0]["observed"] == pytest.approx(0.0546, abs=1e-4)
    assert err.splitlines()[-2] == ("os-rerank: error: relevance gate failed: depth 20: ndcg@10 0.5125 -> 0.5671 "
                                    "(+0.0546; required +0.1000)")
    code, out, err = fake_backend.run("eval", "--config", config, *EVAL_ARGS, "--baseline", str(tmp_path / "no"))
    assert code == 2 and "cannot read the baseline" in err


def test_promote_require_gain_refuses_when_reranking_does_not_pay(fake_backend: Backend, in_repo: None) -> None:
    config = _config(fake_backend)
    gate = ("--queries", "data/eval/queries.jsonl", "--qrels", "data/eval/qrels.txt",
            "--corpus", "data/eval/corpus.jsonl", "--depth", "20")
    code, out, err = fake_backend.run("promote", "--config", config, "--require-gain", "0.1", *gate)
    assert code == 9
    assert "gate: FAIL depth 20: ndcg@10 0.5125 -> 0.5671 (+0.0546; required +0.1000)" in out
    assert "promote: refused by the gate; nothing sent" in out
    cluster = connect(load_config(config, fake_backend.environ))
    settings = cluster.request("GET", "/os-rerank-scenario/_settings", params={"flat_settings": "true"})
    assert "index.search.default_pipeline" not in settings["os-rerank-scenario"]["settings"]
    code, result, err = fake_backend.run_json("promote", "--config", config, "--require-gain", "0.02", *gate)
    assert (code, result["writes_sent"], result["gate"]["passed"]) == (0, 2, True)
    code, out, err = fake_backend.run("promote", "--config", config, "--require-gain", "0.02")
    assert code == 2 and "--require-gain needs --queries FILE and --qrels FILE" in err
