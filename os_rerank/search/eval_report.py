"""The result of `eval` and how it is shown: the report's data (documents, one row of scores per depth and run), the
terminal table, and the optional matplotlib plot. run_eval (eval.py) builds it; the command line prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

CUTOFF = 10  # nDCG and MRR are reported @10 at every depth


@dataclass(frozen=True)
class Documents:
    """Where the evaluated documents live: the test index, or a corpus file loaded into `<index>-eval`."""

    index: str
    count: int
    corpus: str | None = None
    action: str = "existing"  # existing (the test index) | loaded | reused

    def describe(self) -> str:
        if self.corpus is None:
            return f"the test index {self.index} ({self.count} documents)"
        done = "loaded now" if self.action == "loaded" else "already loaded, reused"
        return f"corpus {self.corpus} in index {self.index} ({self.count} documents, {done})"


@dataclass(frozen=True)
class RunScores:
    """The mean metrics and latency of one run (with or without reranking) at one depth."""

    depth: int
    run: str
    ndcg: float
    mrr: float
    recall: float
    hit_rate: float
    p50_ms: float
    p95_ms: float
    searches: int
    first_stage: str = "lexical"  # what found the hits (dense_query.py): lexical, dense or hybrid

    def to_json(self) -> dict[str, Any]:
        return {
            "first_stage": self.first_stage,
            "depth": self.depth,
            "run": self.run,
            f"ndcg@{CUTOFF}": round(self.ndcg, 6),
            f"mrr@{CUTOFF}": round(self.mrr, 6),
            "recall@k": round(self.recall, 6),
            "hit_rate@k": round(self.hit_rate, 6),
            "latency_ms": {"p50": round(self.p50_ms, 3), "p95": round(self.p95_ms, 3)},
            "searches": self.searches,
        }


@dataclass(frozen=True)
class EvalReport:
    documents: Documents
    queries: int
    evaluated: tuple[str, ...]
    judgments: int
    depths: tuple[int, ...]
    rows: tuple[RunScores, ...]
    # query id -> depth -> run -> ranked document ids
    rankings: Mapping[str, Mapping[int, Mapping[str, list[str]]]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # The dense and hybrid first stages (config `embedding`), on the same queries; `rows` are the lexical ones.
    stage_rows: tuple[RunScores, ...] = ()

    def row(self, depth: int, run: str) -> RunScores:
        return next(r for r in self.rows if r.depth == depth and r.run == run)

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": {
                "index": self.documents.index,
                "count": self.documents.count,
                "corpus": self.documents.corpus,
                "action": self.documents.action,
            },
            "queries": self.queries,
            "evaluated": len(self.evaluated),
            "judgments": self.judgments,
            "depths": list(self.depths),
            "results": [r.to_json() for r in self.rows],
            "rankings": {q: {str(d): dict(runs) for d, runs in by.items()} for q, by in self.rankings.items()},
            "notes": list(self.notes),
            **({"first_stages": {stage: [r.to_json() for r in (*self.rows, *self.stage_rows)
                                         if r.first_stage == stage] for stage in self.first_stages}}
               if self.stage_rows else {}),
        }

    @property
    def first_stages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.first_stage for r in (*self.rows, *self.stage_rows)))


LATENCY_HEADERS = ("p50 ms", "p95 ms")


def format_report(report: EvalReport) -> str:
    """The report as the terminal shows it: where the documents came from, then one row per depth and run."""
    from ..output import table

    head = [
        f"documents: {report.documents.describe()}",
        f"queries: {len(report.evaluated)} of {report.queries} scored, {report.judgments} judgments",
    ]
    staged = bool(report.stage_rows)
    rows = [
        [*([r.first_stage] if staged else []), r.depth, r.run, f"{r.ndcg:.4f}", f"{r.mrr:.4f}", f"{r.recall:.4f}",
         f"{r.hit_rate:.4f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}"]
        for r in (*report.rows, *report.stage_rows)
    ]
    headers = [*(["first stage"] if staged else []), "depth", "run", f"nDCG@{CUTOFF}", f"MRR@{CUTOFF}", "Recall@k",
               "Hit@k", *LATENCY_HEADERS]
    tail = [
        "k = depth, the hits reranked. Recall@k and Hit@k are the same with and without reranking: the reranker",
        "reorders the window the first stage found, it cannot add to it.",
        *(f"note: {n}" for n in report.notes),
    ]
    return "\n".join([*head, "", table(rows, headers), "", *tail])


def require_matplotlib() -> None:
    """Fail before any search when --plot cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed",
                            fix="pip install 'os-rerank[plot]'") from None


def plot_report(report: EvalReport, path: str | Path) -> None:
    """A PNG at `path`: metrics against depth (left) and search latency against depth (right), both runs."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.stage_rows:
        _plot_stages(report, path, plt)
        return
    depths = list(report.depths)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, style in (("without", "--"), ("reranked", "-")):
        rows = [report.row(d, run) for d in depths]
        left.plot(depths, [r.ndcg for r in rows], style, marker="o", color="tab:blue", label=f"nDCG@10 {run}")
        left.plot(depths, [r.mrr for r in rows], style, marker="s", color="tab:orange", label=f"MRR@10 {run}")
        if run == "reranked":  # identical for both runs (same window)
            left.plot(depths, [r.recall for r in rows], ":", marker="^", color="tab:green", label="Recall@k")
        right.plot(depths, [r.p50_ms for r in rows], style, marker="o", color="tab:purple", label=f"p50 {run}")
        right.plot(depths, [r.p95_ms for r in rows], style, marker="s", color="tab:red", label=f"p95 {run}")
    left.set(xlabel="depth k (hits reranked)", ylabel="score", ylim=(0, 1.05), xticks=depths,
             title=f"{len(report.evaluated)} queries on {report.documents.index}")
    right.set(xlabel="depth k (hits reranked)", ylabel="search latency (ms)", xticks=depths, title="latency")
    right.set_ylim(bottom=0)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(str(path), dpi=110)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the plot: {exc}") from None
    finally:
        plt.close(fig)


def _plot_stages(report: EvalReport, path: str | Path, plt: Any) -> None:
    """Every first stage without and with reranking, at the deepest depth: metrics (left) and latency (right)."""
    depth = max(report.depths)
    stages = report.first_stages
    rows = {(r.first_stage, r.run): r for r in (*report.rows, *report.stage_rows) if r.depth == depth}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.2
    for i, (label, run, metric, color) in enumerate((
            (f"nDCG@{CUTOFF} without", "without", "ndcg", "tab:blue"),
            (f"nDCG@{CUTOFF} reranked", "reranked", "ndcg", "tab:orange"),
            (f"MRR@{CUTOFF} reranked", "reranked", "mrr", "tab:red"),
            ("Recall@k", "reranked", "recall", "tab:green"))):
        xs = [k + (i - 1.5) * width for k in range(len(stages))]
        left.bar(xs, [getattr(rows[(s, run)], metric) for s in stages], width, color=color, label=label)
    left.set(xticks=range(len(stages)), xticklabels=stages, ylim=(0, 1.05), ylabel="score",
             title=f"{len(report.evaluated)} queries, depth k = {depth}")
    for i, (run, color) in enumerate((("without", "tab:purple"), ("reranked", "tab:red"))):
        xs = [k + (i - 0.5) * 0.35 for k in range(len(stages))]
        right.bar(xs, [rows[(s, run)].p50_ms for s in stages], 0.35, color=color, label=f"p50 {run}")
        right.errorbar(xs, [rows[(s, run)].p50_ms for s in stages],
                       yerr=[[0] * len(stages), [rows[(s, run)].p95_ms - rows[(s, run)].p50_ms for s in stages]],
                       fmt="none", ecolor="black", capsize=3)
    right.set(xticks=range(len(stages)), xticklabels=stages, ylabel="search latency (ms; bar p50, whisker p95)",
              title="latency per first stage")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(str(path), dpi=110)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the plot: {exc}") from None
    finally:
        plt.close(fig)
