"""`eval`: what reranking buys on a judged query set: nDCG@10, MRR@10, Recall@k, hit rate and latency per depth.

Inputs are parsed here (queries as JSONL or TSV, judgments as TREC qrels or JSONL, an optional JSONL corpus); every
parse error names the file and line. For each depth (the number of hits reranked) every query runs without the
pipeline and then through it, with the same first-stage query; a query whose first stage finds nothing is not sent
to the reranker. Progress reaches the caller through `on_event`; this module never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dense
from .cluster import Cluster
from .config import Config
from .documents import json_object, parse_documents, read_lines
from .errors import ClusterError, ConfigError, UsageError
from .events import OnEvent, ignore, note
from .metrics import hit_rate, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from .permissions import explain_denied
from .search import Page, build_search_body, execute, first_stage_query

DEFAULT_DEPTHS = (10, 20, 50)
CUTOFF = 10  # nDCG and MRR are reported @10 at every depth
BATCH = 10  # queries per progress line
BULK_CHUNK = 500
RUNS = ("without", "reranked")

Qrels = dict[str, dict[str, int]]

@dataclass(frozen=True)
class Query:
    id: str
    text: str


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
    first_stage: str = "lexical"  # what found the hits (dense.py): lexical, dense or hybrid

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


# --- input files ------------------------------------------------------------------------------------------------------


def _read_lines(path: Path, what: str) -> list[str]:
    return read_lines(path, what)


def _json_object(path: Path, number: int, line: str) -> dict[str, Any]:
    return json_object(str(path), number, line)


def _is_jsonl(lines: Sequence[str]) -> bool:
    first = next((line.strip() for line in lines if line.strip()), "")
    return first.startswith("{")


def load_queries(path: str | Path) -> list[Query]:
    """Queries from JSONL (`{"id", "text"}` per line) or TSV (`id<TAB>text`); ConfigError naming file and line."""
    path = Path(path)
    lines = _read_lines(path, "queries")
    jsonl = _is_jsonl(lines)
    out: list[Query] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or (not jsonl and line.startswith("#")):
            continue
        if jsonl:
            obj = _json_object(path, number, line)
            qid, text = obj.get("id", obj.get("query_id")), obj.get("text", obj.get("query"))
            if qid is None or not isinstance(text, str):
                raise ConfigError([f"{path}:{number}: expected {{\"id\": ..., \"text\": \"...\"}}"])
        else:
            parts = line.split("\t", 1)
            if len(parts) != 2:
                raise ConfigError([f"{path}:{number}: expected id<TAB>text"])
            qid, text = parts
        qid = str(qid).strip()
        if not qid or not text.strip():
            raise ConfigError([f"{path}:{number}: empty query id or text"])
        if qid in seen:
            raise ConfigError([f"{path}:{number}: duplicate query id {qid!r}"])
        seen.add(qid)
        out.append(Query(qid, text.strip()))
    if not out:
        raise ConfigError([f"{path}: no queries"])
    return out


def load_qrels(path: str | Path) -> Qrels:
    """Judgments from TREC qrels (`qid 0 docid rel`) or JSONL (`{"query_id", "doc_id", "relevance"}`)."""
    path = Path(path)
    lines = _read_lines(path, "judgments")
    jsonl = _is_jsonl(lines)
    out: Qrels = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or (not jsonl and line.startswith("#")):
            continue
        if jsonl:
            obj = _json_object(path, number, line)
            if not all(k in obj for k in ("query_id", "doc_id", "relevance")):
                raise ConfigError([f"{path}:{number}: expected {{\"query_id\", \"doc_id\", \"relevance\"}}"])
            qid, doc, rel = str(obj["query_id"]), str(obj["doc_id"]), obj["relevance"]
        else:
            parts = line.split()
            if len(parts) != 4:
                raise ConfigError([f"{path}:{number}: expected 4 columns `query_id 0 doc_id relevance`, "
                                   f"found {len(parts)}"])
            qid, _, doc, rel = parts
        try:
            grade = int(rel)
        except (TypeError, ValueError):
            raise ConfigError([f"{path}:{number}: relevance must be an integer, not {rel!r}"]) from None
        if isinstance(rel, bool) or isinstance(rel, float) and rel != grade:
            raise ConfigError([f"{path}:{number}: relevance must be an integer, not {rel!r}"])
        out.setdefault(qid, {})[doc] = grade
    if not out:
        raise ConfigError([f"{path}: no judgments"])
    return out


def load_corpus(path: str | Path, fields: Sequence[str], types: Mapping[str, str] | None = None
                ) -> list[dict[str, Any]]:
    """Documents from JSONL (`{"id", <fields>...}`); each must carry the pipeline's document fields (`fields`), as
    strings of the types `types` maps them to (index.fields)."""
    path = Path(path)
    return parse_documents(_read_lines(path, "corpus"), str(path), fields=types or dict.fromkeys(fields, "text"),
                           required=fields, id_keys=("id", "_id", "doc_id"), require_id=True)


def parse_depths(text: str) -> tuple[int, ...]:
    """(10, 20, 50) from "10,20,50"; ConfigError for anything but positive integers."""
    try:
        depths = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError([f"--depths must be comma-separated integers like 10,20,50, not {text!r}"]) from None
    if not depths or depths[0] < 1:
        raise ConfigError([f"--depths must be positive integers, not {text!r}"])
    return tuple(depths)


# --- the documents ----------------------------------------------------------------------------------------------------


def eval_index_name(config: Config) -> str:
    return f"{config.index.name}-eval"


def _count(cluster: Cluster, index: str) -> int | None:
    from .state import count_documents

    return count_documents(cluster, index)


def prepare_documents(
    cluster: Cluster,
    config: Config,
    corpus: list[dict[str, Any]] | None,
    *,
    corpus_name: str | None = None,
    on_event: OnEvent = ignore,
) -> Documents:
    """The index to evaluate on: the test index, or `<index>-eval` holding `corpus` (reused when the count matches)."""
    from .render import bulk_body, index_body

    if corpus is None:
        count = _count(cluster, config.index.name)
        if count is None:
            raise ClusterError(f"the test index {config.index.name} does not exist",
                               fix="run `os-rerank setup`, or pass --corpus FILE to evaluate on your own documents")
        return Documents(config.index.name, count)
    name = eval_index_name(config)
    count = _count(cluster, name)
    if count == len(corpus):
        on_event(note(f"eval: index {name} already holds {count} documents; reusing it"))
        return Documents(name, count, corpus_name, "reused")
    eval_config = config.model_copy(update={"index": config.index.model_copy(update={"name": name})})
    if count is not None:
        on_event(note(f"eval: index {name} holds {count} documents, the corpus {len(corpus)}; recreating it"))
        cluster.request("DELETE", f"/{name}")
    on_event(note(f"eval: loading {len(corpus)} documents into {name}"))
    cluster.request("PUT", f"/{name}", body=index_body(eval_config))
    for start in range(0, len(corpus), BULK_CHUNK):
        chunk = corpus[start : start + BULK_CHUNK]
        response = cluster.request("POST", "/_bulk", body=bulk_body(eval_config, chunk),
                                   params={"refresh": "true"}, content_type="application/x-ndjson")
        if isinstance(response, Mapping) and response.get("errors"):
            first = _first_bulk_error(response)
            denied = "no permissions for [" in first  # a bulk reports a missing permission per document
            raise ClusterError(f"POST /_bulk into {name}: {first}",
                               fix=explain_denied("POST", f"/{name}", first) if denied else None)
    return Documents(name, len(corpus), corpus_name, "loaded")


def _first_bulk_error(response: Mapping[str, Any]) -> str:
    for item in response.get("items") or []:
        for op in item.values():
            error = op.get("error") if isinstance(op, Mapping) else None
            if error:
                reason = error.get("reason", error) if isinstance(error, Mapping) else error
                return f"document {op.get('_id')!r}: {reason}"
    return "some documents were rejected"


# --- the run ----------------------------------------------------------------------------------------------------------


def check_depths(config: Config, depths: Sequence[int]) -> None:
    too_big = [d for d in depths if d > config.sagemaker.max_batch]
    if too_big:
        raise ConfigError(
            [f"--depths {max(too_big)} is larger than sagemaker.max_batch ({config.sagemaker.max_batch}) "
             f"in {config.source.name}"],
            fix="evaluate smaller depths, or raise sagemaker.max_batch if the endpoint takes that many documents",
        )


def run_eval(
    cluster: Cluster,
    config: Config,
    queries: Sequence[Query],
    qrels: Qrels,
    *,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    corpus: list[dict[str, Any]] | None = None,
    corpus_name: str | None = None,
    on_event: OnEvent = ignore,
    first_stages: Sequence[str] | None = None,
) -> EvalReport:
    """Every judged query with and without reranking at every depth, scored and timed; for every first stage the
    config provisions (`first_stages` picks), each on the same queries."""
    check_depths(config, depths)
    notes: list[str] = []
    judged = [q for q in queries if any(rel > 0 for rel in qrels.get(q.id, {}).values())]
    unjudged = len(queries) - len(judged)
    if unjudged:
        notes.append(f"{unjudged} queries have no relevant judgment and are not scored")
    unknown = sorted(set(qrels) - {q.id for q in queries})
    if unknown:
        notes.append(f"{len(unknown)} query ids in the judgments are not in the queries file (first: {unknown[0]})")
    if not judged:
        raise ConfigError(["no query has a relevant judgment (relevance > 0): nothing to evaluate"],
                          fix="check that the query ids of --qrels match those of --queries")
    if corpus is not None:
        ids = {d["id"] for d in corpus}
        missing = sum(1 for q in judged for doc in qrels[q.id] if doc not in ids)
        if missing:
            notes.append(f"{missing} judged documents are not in the corpus")
    documents = prepare_documents(cluster, config, corpus, corpus_name=corpus_name, on_event=on_event)
    rankings, rows = _run_stage(cluster, config, judged, qrels, depths, "lexical", documents.index, on_event)
    stage_rows: list[RunScores] = []
    for stage in [s for s in (first_stages or dense.provisioned_first_stages(config)) if s != "lexical"]:
        if not stage_rows:  # the same documents, embedded, in a k-NN index
            dense_index = dense.prepare_dense_documents(cluster, config, corpus, on_event=on_event)
        found, more = _run_stage(cluster, config, judged, qrels, depths, stage, dense_index, on_event)
        stage_rows.extend(more)
        for qid, by_depth in found.items():
            for depth, runs in by_depth.items():
                rankings[qid][depth].update({f"{stage} {run}": ids for run, ids in runs.items()})
    return EvalReport(
        documents=documents,
        queries=len(queries),
        evaluated=tuple(q.id for q in judged),
        judgments=sum(len(qrels[q.id]) for q in judged),
        depths=tuple(depths),
        rows=tuple(rows),
        rankings=rankings,
        notes=tuple(notes),
        stage_rows=tuple(stage_rows),
    )


def _run_stage(cluster: Cluster, config: Config, judged: Sequence[Query], qrels: Qrels, depths: Sequence[int],
               stage: str, index: str, on_event: OnEvent
               ) -> tuple[dict[str, dict[int, dict[str, list[str]]]], list[RunScores]]:
    """Every judged query through first stage `stage` on `index`, without and with reranking, at every depth."""
    fields = config.pipeline.document_fields
    model_id = dense.embedding_model_id(cluster, config) if stage != "lexical" else None
    rankings: dict[str, dict[int, dict[str, list[str]]]] = {q.id: {} for q in judged}
    latencies: dict[tuple[int, str], list[float]] = {(d, r): [] for d in depths for r in RUNS}
    shown = "" if stage == "lexical" else f" ({stage})"
    for depth in depths:
        for start in range(0, len(judged), BATCH):
            batch = judged[start : start + BATCH]
            for q in batch:
                found = dense.first_stage(config, stage, q.text, window=depth,
                                          lexical=first_stage_query(q.text, fields), model_id=model_id)
                plain = execute(cluster, index, build_search_body(q.text, query=found.query, window=depth,
                                                                  rerank=False, base=found.base),
                                pipeline=found.plain_pipeline)
                reranked: Page | None = None
                if plain.total > 0:  # an empty page is never sent to the reranker
                    reranked = execute(cluster, index,
                                       build_search_body(q.text, query=found.query, window=depth, rerank=True,
                                                         base=found.base),
                                       pipeline=found.rerank_pipeline)
                    latencies[(depth, "reranked")].append(reranked.latency_ms)
                latencies[(depth, "without")].append(plain.latency_ms)
                rankings[q.id][depth] = {
                    "without": [h.id for h in plain.hits],
                    "reranked": [h.id for h in (reranked or plain).hits],
                }
            on_event(note(f"eval{shown}: depth {depth}: queries {start + 1}-{start + len(batch)} of {len(judged)} "
                          "done"))

    rows = []
    for depth in depths:
        for run in RUNS:
            ranked = [rankings[q.id][depth][run] for q in judged]
            judgments = [qrels[q.id] for q in judged]
            n = len(judged)
            times = latencies[(depth, run)]
            rows.append(
                RunScores(
                    depth=depth,
                    run=run,
                    ndcg=sum(ndcg_at_k(r, j, CUTOFF) for r, j in zip(ranked, judgments, strict=True)) / n,
                    mrr=sum(mrr_at_k(r, j, CUTOFF) for r, j in zip(ranked, judgments, strict=True)) / n,
                    recall=sum(recall_at_k(r, j, depth) for r, j in zip(ranked, judgments, strict=True)) / n,
                    hit_rate=hit_rate(ranked, judgments, depth),
                    p50_ms=percentile(times, 50),
                    p95_ms=percentile(times, 95),
                    searches=len(times),
                    first_stage=stage,
                )
            )
    return rankings, rows


# --- output -----------------------------------------------------------------------------------------------------------

LATENCY_HEADERS = ("p50 ms", "p95 ms")


def format_report(report: EvalReport) -> str:
    """The report as the terminal shows it: where the documents came from, then one row per depth and run."""
    from .output import table

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
