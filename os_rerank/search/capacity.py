"""A capacity note from measured figures: endpoint instances for a target query rate and p95. Pure.

The model, stated so it can be argued with:
- a reranked search sends one endpoint invocation holding `depth` pairs; an instance scores `pairs_per_second`
  (measured: `bench/serve_bench.py`, or from `eval` as depth / the latency reranking adds), so one invocation
  keeps an instance busy for S = depth / pairs_per_second seconds;
- queueing stretches latency as utilisation ρ grows; the note takes p95 under load ≈ p95 alone / (1 − ρ)
  (the M/M/1 stretch of the mean, applied to p95: pessimistic for the steady service times of a model), so the
  highest utilisation that keeps the target p95 is ρ = 1 − p95 alone / target p95, at most `MAX_UTILISATION`;
- instances = ⌈target qps × S / ρ⌉; and the autoscaling target that keeps each instance at ρ is SageMaker's
  `SageMakerVariantInvocationsPerInstance` (invocations per instance per minute) = ⌊60 × ρ / S⌋
  (`deploy.autoscaling.target_invocations_per_instance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_UTILISATION = 0.8  # headroom for bursts and for the minutes autoscaling takes to add an instance


@dataclass(frozen=True)
class CapacityNote:
    depth: int
    pairs_per_second: float
    target_qps: float
    target_p95_ms: float | None
    p95_alone_ms: float | None
    utilisation: float  # 0 when the target p95 cannot be met at any instance count
    instances: int | None
    invocations_per_instance_per_minute: int | None

    @property
    def service_seconds(self) -> float:
        return self.depth / self.pairs_per_second

    def line(self) -> str:
        head = (f"capacity: depth {self.depth} at {self.pairs_per_second:.0f} pairs/s per instance is "
                f"{1000 * self.service_seconds:.1f} ms of endpoint time per search")
        if self.instances is None:
            return (f"{head}; a p95 of {self.target_p95_ms:g} ms is out of reach by adding instances (one search "
                    f"alone takes {self.p95_alone_ms:.1f} ms at p95): rerank fewer hits or use a faster instance")
        p95 = f" and p95 ≤ {self.target_p95_ms:g} ms" if self.target_p95_ms is not None else ""
        return (f"{head}; {self.target_qps:g} queries/s{p95} needs {self.instances} instance(s) at "
                f"{100 * self.utilisation:.0f}% utilisation; autoscaling target "
                f"{self.invocations_per_instance_per_minute} invocations per instance per minute")

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "pairs_per_second": round(self.pairs_per_second, 3),
                "target_qps": self.target_qps, "target_p95_ms": self.target_p95_ms,
                "p95_alone_ms": None if self.p95_alone_ms is None else round(self.p95_alone_ms, 3),
                "utilisation": round(self.utilisation, 4), "instances": self.instances,
                "target_invocations_per_instance": self.invocations_per_instance_per_minute, "line": self.line()}


def capacity_note(*, depth: int, pairs_per_second: float, target_qps: float, target_p95_ms: float | None = None,
                  p95_alone_ms: float | None = None) -> CapacityNote:
    """Instances and the autoscaling target for `target_qps` (and `target_p95_ms`) at `depth` pairs per search."""
    if depth < 1 or pairs_per_second <= 0 or target_qps <= 0:
        raise ValueError("depth, pairs_per_second and target_qps must be positive")
    service = depth / pairs_per_second
    utilisation = MAX_UTILISATION
    if target_p95_ms is not None:
        alone = p95_alone_ms if p95_alone_ms is not None else 1000 * service
        utilisation = min(MAX_UTILISATION, 1 - alone / target_p95_ms)
        p95_alone_ms = alone
    if utilisation <= 0:
        return CapacityNote(depth, pairs_per_second, target_qps, target_p95_ms, p95_alone_ms, 0.0, None, None)
    instances = max(1, math.ceil(target_qps * service / utilisation - 1e-9))
    per_minute = max(1, math.floor(60 * utilisation / service))
    return CapacityNote(depth, pairs_per_second, target_qps, target_p95_ms, p95_alone_ms, utilisation, instances,
                        per_minute)


def pairs_per_second_from_eval(depth: int, p50_reranked_ms: float, p50_without_ms: float) -> float | None:
    """Pairs/s the pipeline achieved in `eval`: depth over the p50 latency reranking added (None if it added none)."""
    added = (p50_reranked_ms - p50_without_ms) / 1000
    return depth / added if added > 0 else None
