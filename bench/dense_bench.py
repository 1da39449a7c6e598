"""The three first stages on a real node: lexical / dense / hybrid x without / with rerank on data/eval, the ingest
throughput of the embedding pipeline, and search latency per first stage. Prints figures; not a test.

    python bench/dense_bench.py --opensearch-url http://127.0.0.1:9200 \\
        [--embedding-url http://127.0.0.1:8080 --embedding-contract vector-embedding] \\
        [--rerank-url http://127.0.0.1:8080 --rerank-contract hf-text-classification] [--depth 50] \\
        [--lexical-weight 0.3] [--ingest-rounds 3] [--latency-rounds 5] [--keep]

With the real all-MiniLM-L6-v2 embeddings (README, "Dense and hybrid first stages"): `os-rerank serve --port 8080
--embedding-model minilm` hosts the reranker and the embedder on one port (endpoint names os-rerank-cross-encoder
and os-rerank-embedding, the defaults here), then --embedding-url and --rerank-url are both its URL.

Without --embedding-url the embedder is the tests' hashed bag-of-words stand-in (tests/fakes/embedder.py), and
without --rerank-url the reranker is the local endpoint's lexical scorer: both measure the plumbing, not relevance.
Give the URLs of `os-rerank serve` endpoints (or any SageMaker-compatible ones; the endpoint names are
--embedding-name / --rerank-name) for real models. The node must reach those URLs. The AWS credentials in the
environment sign the connectors' requests; without any, a fixed test pair is used (what the local stand-ins accept).

1. `os-rerank setup` with an `embedding` section (index os-rerank-bench and its -dense twin).
2. Ingest: the corpus (217 passages) into os-rerank-bench-eval-dense through the ingest pipeline, from empty:
   documents/s (one embedding call per document, as the text_embedding processor makes them).
3. `eval` on data/eval at --depth for every first stage, without and with reranking: nDCG@10, MRR@10, Recall@k and
   the search latency p50/p95 the client sees.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAKE_KEYS = ("AKIDSCENARIOFAKEKEY01", "scenario-secret-Zq7Wk2vPx9")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opensearch-url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--embedding-url", help="base URL of a SageMaker-compatible embedding endpoint")
    parser.add_argument("--embedding-name", default="os-rerank-embedding")
    parser.add_argument("--embedding-contract", default="vector-embedding")
    parser.add_argument("--rerank-url", help="base URL of a SageMaker-compatible rerank endpoint")
    parser.add_argument("--rerank-name", default="os-rerank-cross-encoder", help="(default: serve's)")
    parser.add_argument("--rerank-contract", default="hf-text-classification")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--lexical-weight", type=float, default=None,
                        help="embedding.lexical_weight: the BM25 share of the hybrid score (default: the config's)")
    parser.add_argument("--ingest-rounds", type=int, default=3,
                        help="ingest the corpus this many times from empty; each round's documents/s is printed")
    parser.add_argument("--latency-rounds", type=int, default=5,
                        help="after eval, run every query this many more times per first stage and run (after one "
                             "unrecorded warm-up round) for the latency table; 0: only eval's one round")
    parser.add_argument("--keep", action="store_true", help="leave what setup made (default: teardown)")
    args = parser.parse_args()

    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        os.environ.update(AWS_ACCESS_KEY_ID=FAKE_KEYS[0], AWS_SECRET_ACCESS_KEY=FAKE_KEYS[1])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")

    from os_rerank.cli import main as cli
    from os_rerank.cluster import connect
    from os_rerank.config import load_config
    from os_rerank.provision import dense
    from os_rerank.search.eval import run_eval
    from os_rerank.search.eval_set import load_corpus, load_qrels, load_queries
    from os_rerank.search.metrics import recall_at_k

    started = []
    rerank_url, embedding_url = args.rerank_url, args.embedding_url
    if rerank_url is None:
        from os_rerank.contracts import get_contract
        from os_rerank.server.app import EndpointServer
        from os_rerank.server.lexical import LexicalScorer

        server = EndpointServer(get_contract(args.rerank_contract), LexicalScorer(), endpoint_name=args.rerank_name,
                                credentials=dict([FAKE_KEYS])).start()
        started.append(server)
        rerank_url = server.url
    if embedding_url is None:
        from os_rerank.embedding_contracts import get_embedding_contract
        from tests.fakes.embedder import EmbeddingEndpoint

        embedder = EmbeddingEndpoint(get_embedding_contract(args.embedding_contract),
                                     endpoint_name=args.embedding_name).start()
        started.append(embedder)
        embedding_url = embedder.url

    folder = Path(tempfile.mkdtemp(prefix="dense-bench-"))
    config_path = folder / "config.yaml"
    config_path.write_text(json.dumps({
        "opensearch": {"url": args.opensearch_url, "timeout": 120},
        "sagemaker": {"region": "us-west-2", "endpoint_name": args.rerank_name, "local_endpoint_url": rerank_url,
                      "contract": args.rerank_contract},
        "connector": {"name": "os-rerank bench connector"},
        "model": {"name": "os-rerank bench model", "group": "os-rerank-bench"},
        "index": {"name": "os-rerank-bench"},
        "pipeline": {"name": "os_rerank_bench"},
        "embedding": {"endpoint_name": args.embedding_name, "local_endpoint_url": embedding_url,
                      "contract": args.embedding_contract, "connector_name": "os-rerank bench embedding connector",
                      "model_name": "os-rerank bench embedding", "ingest_pipeline": "os_rerank_bench_embed",
                      "hybrid_pipeline": "os_rerank_bench_hybrid",
                      **({} if args.lexical_weight is None else {"lexical_weight": args.lexical_weight})},
    }), encoding="utf-8")

    def run(*argv: str) -> int:
        return cli([*argv, "--config", str(config_path)], environ=dict(os.environ))

    try:
        t0 = time.perf_counter()
        if run("setup", "--no-verify") != 0:
            return 1
        print(f"setup: {time.perf_counter() - t0:.1f} s")
        config = load_config(config_path, os.environ)
        cluster = connect(config)
        data = ROOT / "data" / "eval"
        corpus = load_corpus(data / "corpus.jsonl", config.pipeline.document_fields, config.index.fields)
        rates = []
        for _ in range(args.ingest_rounds):
            cluster.request("DELETE", f"/{dense.eval_dense_index(config)}", missing_ok=True)
            t0 = time.perf_counter()
            dense.prepare_dense_documents(cluster, config, corpus)
            rates.append(len(corpus) / (time.perf_counter() - t0))
        print(f"ingest through {config.embedding.ingest_pipeline if config.embedding else '?'}: {len(corpus)} "
              f"documents from empty, {args.ingest_rounds} rounds: "
              + ", ".join(f"{r:.1f}" for r in rates) + " documents/s")
        qrels = load_qrels(data / "qrels.txt")
        report = run_eval(cluster, config, load_queries(data / "queries.jsonl"), qrels,
                          depths=(args.depth,), corpus=corpus, corpus_name="data/eval/corpus.jsonl")
        print(f"\n{len(report.evaluated)} queries, depth {args.depth}, rerank {args.rerank_contract} at {rerank_url}, "
              f"embedding {args.embedding_contract} at {embedding_url}\n")
        # Recall@10 (what the top of the page holds) next to Recall@depth (what the reranker was given: the most it
        # can bring to the top), and the queries whose relevant passages the first stage never returned at all.
        print(f"{'first stage':<12} {'run':<9} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>7} {f'R@{args.depth}':>7} "
              f"{'p50 ms':>8} {'p95 ms':>8}")
        for r in (*report.rows, *report.stage_rows):
            key = r.run if r.first_stage == "lexical" else f"{r.first_stage} {r.run}"
            ranked = [report.rankings[q][args.depth][key] for q in report.evaluated]
            recall10 = sum(recall_at_k(ids, qrels[q], 10) for q, ids in zip(report.evaluated, ranked, strict=True))
            print(f"{r.first_stage:<12} {r.run:<9} {r.ndcg:8.4f} {r.mrr:8.4f} {recall10 / len(ranked):7.4f} "
                  f"{r.recall:7.4f} {r.p50_ms:8.1f} {r.p95_ms:8.1f}")
        print()
        for r in (*report.rows, *report.stage_rows):
            if r.run != "without":
                continue
            key = "without" if r.first_stage == "lexical" else f"{r.first_stage} without"
            missed = [q for q in report.evaluated
                      if recall_at_k(report.rankings[q][args.depth][key], qrels[q], args.depth) == 0]
            print(f"{r.first_stage}: {len(missed)} of {len(report.evaluated)} queries with no relevant passage in "
                  f"the first stage's {args.depth} (no reranker can fix those)"
                  + (f": {', '.join(missed)}" if missed else ""))
        if args.latency_rounds > 0:
            latency_table(cluster, config, report, load_queries(data / "queries.jsonl"), args.depth,
                          args.latency_rounds, dense.eval_dense_index(config))
    finally:
        if not args.keep:
            run("teardown")
        for server in started:
            server.stop()
    return 0


def latency_table(cluster: Any, config: Any, report: Any, queries: list[Any], depth: int, rounds: int,
                  dense_index: str) -> None:
    """Search latency p50/p95 per first stage, without and with reranking, over `rounds` rounds of the evaluated
    queries: eval's one round gives 34 samples per cell, too few for a p95 on a shared 2-vCPU machine. The
    requests are eval's own (the same first_stage / build_search_body / execute calls)."""
    from os_rerank.provision import dense
    from os_rerank.search.metrics import percentile
    from os_rerank.search.query import build_search_body, execute, first_stage_query

    by_id = {q.id: q for q in queries}
    evaluated = [by_id[q] for q in report.evaluated]
    fields = config.pipeline.document_fields
    print(f"\nsearch latency seen by the client, {rounds} rounds x {len(evaluated)} queries after a warm-up round, "
          f"window {depth}")
    print(f"{'first stage':<12} {'run':<9} {'p50 ms':>8} {'p95 ms':>8} {'searches':>9}")
    for stage in ("lexical", *(s for s in dense.provisioned_first_stages(config) if s != "lexical")):
        index = f"{config.index.name}-eval" if stage == "lexical" else dense_index
        model_id = dense.embedding_model_id(cluster, config) if stage != "lexical" else None
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(rounds + 1):
            for q in evaluated:
                found = dense.first_stage(config, stage, q.text, window=depth,
                                          lexical=first_stage_query(q.text, fields), model_id=model_id)
                for rerank in (False, True):
                    page = execute(cluster, index, build_search_body(q.text, query=found.query, window=depth,
                                                                     rerank=rerank, base=found.base),
                                   pipeline=found.rerank_pipeline if rerank else found.plain_pipeline)
                    if round_:
                        times[rerank].append(page.latency_ms)
        for rerank, run in ((False, "without"), (True, "reranked")):
            print(f"{stage:<12} {run:<9} {percentile(times[rerank], 50):8.1f} {percentile(times[rerank], 95):8.1f} "
                  f"{len(times[rerank]):9d}")


if __name__ == "__main__":
    raise SystemExit(main())
