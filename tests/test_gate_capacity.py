"""The relevance gate and the capacity note (pure), and the promote/rollback planner (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from os_rerank.errors import ClusterError, ConfigError, ExitStatus
from os_rerank.provision.promote import IndexDefault, Promotion, plan_promote, plan_rollback
from os_rerank.search.capacity import MAX_UTILISATION, capacity_note, pairs_per_second_from_eval
from os_rerank.search.gate import GateError, evaluate_gate, load_baseline

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


def _report(without: float, reranked: float, depth: int = 20, p95: float = 30.0) -> dict[str, Any]:
    def row(run: str, value: float, lat: float) -> dict[str, Any]:
        return {"depth": depth, "run": run, "ndcg@10": value, "mrr@10": value / 2,
                "latency_ms": {"p50": lat / 2, "p95": lat}}
    return {"results": [row("without", without, 5.0), row("reranked", reranked, p95)]}


def test_gain_gate_passes_at_the_bound_and_fails_under_it() -> None:
    assert evaluate_gate(_report(0.50, 0.52), min_gain=0.02).passed  # exactly the gain asked: 6-decimal slack
    gate = evaluate_gate(_report(0.50, 0.515), min_gain=0.02)
    assert not gate.passed
    assert gate.lines() == ["gate: FAIL depth 20: ndcg@10 0.5000 -> 0.5150 (+0.0150; required +0.0200)",
                            "gate: FAILED (1 of 1 checks)"]
    error = gate.error()
    assert isinstance(error, GateError) and error.exit_code == ExitStatus.GATE == 9


def test_mrr_baseline_and_latency_checks() -> None:
    report, baseline = _report(0.4, 0.6, p95=80.0), _report(0.4, 0.62)
    gate = evaluate_gate(report, metric="mrr", baseline=baseline, max_drop=0.005, max_p95_ms=50)
    assert [(c.kind, c.passed) for c in gate.checks] == [("baseline", False), ("latency", False)]
    assert gate.checks[0].line == "depth 20: mrr@10 reranked 0.3000 vs baseline 0.3100 (-0.0100; allowed drop 0.0050)"
    assert evaluate_gate(report, baseline=report).passed  # a run against its own saved output


def test_baseline_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b\.json:1:2: invalid JSON"):
        load_baseline(bad, [20])
    bad.write_text(json.dumps({"results": [{"depth": 10}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not an `os-rerank eval --json` output"):
        load_baseline(bad, [20])
    bad.write_text(json.dumps(_report(0.1, 0.2, depth=50)), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"depths \[50\], this run \[20\]: none in common"):
        load_baseline(bad, [20])


def test_capacity_from_measured_pairs_per_second() -> None:
    # 71 pairs/s (serve, onnx fp32, 2 cores), depth 20: 282 ms per search; 5 queries/s at 80% -> 2 instances.
    note = capacity_note(depth=20, pairs_per_second=71.0, target_qps=5.0)
    assert (note.instances, note.utilisation) == (2, MAX_UTILISATION)
    assert note.invocations_per_instance_per_minute == 170  # floor(60 * 0.8 / (20 / 71))
    # A p95 target leaves less room: 300 ms alone against 600 ms -> 50% utilisation.
    note = capacity_note(depth=20, pairs_per_second=71.0, target_qps=5.0, target_p95_ms=600, p95_alone_ms=300)
    assert (note.utilisation, note.instances, note.invocations_per_instance_per_minute) == (0.5, 3, 106)
    unreachable = capacity_note(depth=20, pairs_per_second=71.0, target_qps=5.0, target_p95_ms=200,
                                p95_alone_ms=300)
    assert unreachable.instances is None and "out of reach" in unreachable.line()
    assert pairs_per_second_from_eval(20, 30.0, 10.0) == 1000.0
    assert pairs_per_second_from_eval(20, 10.0, 10.0) is None


def _state(default: str | None, record: Promotion | None = None, meta: dict[str, Any] | None = None
           ) -> IndexDefault:
    full = dict(meta or {})
    if record is not None:
        full["os_rerank_promotion"] = record.to_dict()
    return IndexDefault("docs", default, full, record, True)


def test_promote_plan_records_first_then_sets_and_keeps_other_meta() -> None:
    change = plan_promote(_state("theirs", meta={"team": "x"}), "rr", now="T")
    assert [(w.method, w.path, w.body) for w in change.writes] == [
        ("PUT", "/docs/_mapping", {"_meta": {"team": "x", "os_rerank_promotion": {
            "pipeline": "rr", "previous": "theirs", "at": "T"}}}),
        ("PUT", "/docs/_settings", {"index.search.default_pipeline": "rr"}),
    ]
    assert plan_promote(_state("rr", Promotion("rr", None, "T")), "rr", now="U").writes == ()
    assert "set outside os-rerank" in plan_promote(_state("rr"), "rr", now="U").reason


def test_rollback_plans_every_case() -> None:
    record = Promotion("rr", "_none", "T")
    restore = plan_rollback(_state("rr", record, {"team": "x"}), "rr")
    assert [w.body for w in restore.writes] == [{"index.search.default_pipeline": "_none"}, {"_meta": {"team": "x"}}]
    # A rollback that stopped after restoring the setting: only the record is left to remove.
    assert [w.path for w in plan_rollback(_state("_none", record), "rr").writes] == ["/docs/_mapping"]
    assert plan_rollback(_state(None), "rr").writes == ()
    with pytest.raises(ClusterError, match="os-rerank did not promote it"):
        plan_rollback(_state("rr"), "rr")
    with pytest.raises(ClusterError, match="someone changed it since"):
        plan_rollback(_state("other", record), "rr")
