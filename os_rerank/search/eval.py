"""`eval`: what reranking buys on a judged query set: nDCG@10, MRR@10, Recall@k, hit rate and latency per depth.

The judged query set is read by eval_set.py and the report is shown by eval_report.py; this module loads the
documents and runs the searches. For each depth (the number of hits reranked) every query runs without the
pipeline and then through it, with the same first-stage query; a query whose first stage finds nothing is not sent
to the reranker. Progress reaches the caller through `on_event`; this module never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError, ConfigError
from ..events import OnEvent, ignore, note
from ..provision import dense
from ..provision.permissions import explain_denied
from . import dense_query
from .eval_report import CUTOFF, Documents, EvalReport, RunScores
from .eval_set import Qrels, Query
from .metrics import hit_rate, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from .query import Page, build_search_body, execute, first_stage_query

DEFAULT_DEPTHS = (10, 20, 50)
BATCH = 10  # queries per progress line
BULK_CHUNK = 500
RUNS = ("without", "reranked")


# --- the documents ----------------------------------------------------------------------------------------------------


def eval_index_name(config: Config) -> str:
    return f"{config.index.name}-eval"


def _count(cluster: Cluster, index: str) -> int | None:
    from ..provision.state import count_documents

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
    from ..provision.render import bulk_body, index_body

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
            dense_index = dense_query.prepare_dense_documents(cluster, config, corpus, on_event=on_event)
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
    model_id = dense_query.embedding_model_id(cluster, config) if stage != "lexical" else None
    rankings: dict[str, dict[int, dict[str, list[str]]]] = {q.id: {} for q in judged}
    latencies: dict[tuple[int, str], list[float]] = {(d, r): [] for d in depths for r in RUNS}
    shown = "" if stage == "lexical" else f" ({stage})"
    for depth in depths:
        for start in range(0, len(judged), BATCH):
            batch = judged[start : start + BATCH]
            for q in batch:
                found = dense_query.first_stage(config, stage, q.text, window=depth,
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
