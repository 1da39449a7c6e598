"""The relevance gate: does reranking pay? Pure, over `eval --json` data (this run's, and a saved earlier run's).

Checks, each at every depth the run evaluated:
- gain: metric reranked − metric without reranking ≥ `min_gain` (`eval --fail-under`, `promote --require-gain`);
- baseline: metric reranked ≥ the baseline run's metric reranked at the same depth − `max_drop` (`--baseline FILE`);
- latency: p95 of the reranked search ≤ `max_p95_ms` (`--max-p95-ms`).
Values are compared as `eval --json` rounds them (6 decimals), so a run compared with its own saved output passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ExitStatus, OsRerankError

METRICS = {"ndcg": "ndcg@10", "mrr": "mrr@10"}
_EPSILON = 1e-9  # rounding slack: the values are 6-decimal roundings


class GateError(OsRerankError):
    """The relevance gate failed: reranking did not gain (or keep, or stay fast enough) what was asked."""

    exit_code = ExitStatus.GATE


@dataclass(frozen=True)
class GateCheck:
    kind: str  # gain | baseline | latency
    depth: int
    observed: float
    bound: float
    passed: bool
    line: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "depth": self.depth, "observed": round(self.observed, 6),
                "bound": round(self.bound, 6), "passed": self.passed, "line": self.line}


@dataclass(frozen=True)
class GateResult:
    metric: str
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def lines(self) -> list[str]:
        """One line per check (`gate: PASS ...` / `gate: FAIL ...`), then the verdict: fit for a CI log."""
        verdict = (f"gate: passed ({len(self.checks)} checks)" if self.passed else
                   f"gate: FAILED ({len(self.failed)} of {len(self.checks)} checks)")
        return [f"gate: {'PASS' if c.passed else 'FAIL'} {c.line}" for c in self.checks] + [verdict]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "metric": self.metric, "checks": [c.to_json() for c in self.checks]}

    def error(self) -> GateError:
        return GateError(f"relevance gate failed: {'; '.join(c.line for c in self.failed)}",
                         fix="keep reranking off for this index (do not promote), or improve the model or the depth "
                         "and evaluate again")


def _rows(report: Mapping[str, Any]) -> dict[tuple[int, str], Mapping[str, Any]]:
    return {(int(r["depth"]), str(r["run"])): r for r in report.get("results") or []}


def evaluate_gate(report: Mapping[str, Any], *, metric: str = "ndcg", min_gain: float | None = None,
                  baseline: Mapping[str, Any] | None = None, max_drop: float = 0.0,
                  max_p95_ms: float | None = None) -> GateResult:
    """The checks asked for, over `report` (the `eval --json` of this run) and `baseline` (an earlier one)."""
    key = METRICS[metric]
    rows = _rows(report)
    depths = sorted({d for d, _ in rows})
    checks: list[GateCheck] = []
    for depth in depths:
        reranked, without = rows.get((depth, "reranked")), rows.get((depth, "without"))
        if reranked is None or without is None:
            continue
        value = float(reranked[key])
        if min_gain is not None:
            gain = value - float(without[key])
            ok = gain + _EPSILON >= min_gain
            checks.append(GateCheck("gain", depth, gain, min_gain, ok,
                                    f"depth {depth}: {key} {float(without[key]):.4f} -> {value:.4f} "
                                    f"({gain:+.4f}; required {min_gain:+.4f})"))
        if baseline is not None:
            before = _rows(baseline).get((depth, "reranked"))
            if before is not None:
                old = float(before[key])
                ok = value + _EPSILON >= old - max_drop
                checks.append(GateCheck("baseline", depth, value - old, -max_drop, ok,
                                        f"depth {depth}: {key} reranked {value:.4f} vs baseline {old:.4f} "
                                        f"({value - old:+.4f}; allowed drop {max_drop:.4f})"))
        if max_p95_ms is not None:
            p95 = float((reranked.get("latency_ms") or {}).get("p95", 0.0))
            checks.append(GateCheck("latency", depth, p95, max_p95_ms, p95 <= max_p95_ms,
                                    f"depth {depth}: reranked search p95 {p95:.1f} ms (at most {max_p95_ms:g} ms)"))
    return GateResult(key, tuple(checks))


def load_baseline(path: str | Path, depths: Sequence[int]) -> dict[str, Any]:
    """A saved `eval --json` run; ConfigError naming the file when it is not one, or shares no depth with this run."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the baseline: {exc}"]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"],
                          fix="--baseline takes what `os-rerank eval --json` printed") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not all(
            isinstance(r, dict) and {"depth", "run", *METRICS.values()} <= set(r) for r in results):
        raise ConfigError([f"{path}: not an `os-rerank eval --json` output (no results with depth, run, "
                           f"{', '.join(METRICS.values())})"], fix="save the output of `os-rerank eval --json`")
    shared = {int(r["depth"]) for r in results} & set(depths)
    if not shared:
        raise ConfigError([f"{path}: the baseline evaluated depths "
                           f"{sorted({int(r['depth']) for r in results})}, this run {list(depths)}: none in common"],
                          fix="evaluate the same --depths as the baseline")
    return data
