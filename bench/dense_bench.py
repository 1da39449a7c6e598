"""The three first stages on a real node: lexical / dense / hybrid x without / with rerank on data/eval, the ingest
throughput of the embedding pipeline, and search latency per first stage. Prints figures; not a test.

    python bench/dense_bench.py --opensearch-url http://127.0.0.1:9200 \\
        [--embedding-url http://127.0.0.1:8081 --embedding-contract vector-embedding] \\
        [--rerank-url http://127.0.0.1:8080 --rerank-contract hf-text-classification] [--depth 50] [--keep]

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
    parser.add_argument("--rerank-name", default="os-rerank")
    parser.add_argument("--rerank-contract", default="hf-text-classification")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="leave what setup made (default: teardown)")
    args = parser.parse_args()

    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        os.environ.update(AWS_ACCESS_KEY_ID=FAKE_KEYS[0], AWS_SECRET_ACCESS_KEY=FAKE_KEYS[1])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")

    from os_rerank import dense
    from os_rerank.cli import main as cli
    from os_rerank.cluster import connect
    from os_rerank.config import load_config
    from os_rerank.eval import run_eval
    from os_rerank.eval_set import load_corpus, load_qrels, load_queries

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
                      "hybrid_pipeline": "os_rerank_bench_hybrid"},
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
        cluster.request("DELETE", f"/{dense.eval_dense_index(config)}", missing_ok=True)
        t0 = time.perf_counter()
        dense.prepare_dense_documents(cluster, config, corpus)
        seconds = time.perf_counter() - t0
        print(f"ingest through {config.embedding.ingest_pipeline if config.embedding else '?'}: {len(corpus)} "
              f"documents in {seconds:.2f} s = {len(corpus) / seconds:.1f} documents/s")
        report = run_eval(cluster, config, load_queries(data / "queries.jsonl"), load_qrels(data / "qrels.txt"),
                          depths=(args.depth,), corpus=corpus, corpus_name="data/eval/corpus.jsonl")
        print(f"\n{len(report.evaluated)} queries, depth {args.depth}, rerank {args.rerank_contract} at {rerank_url}, "
              f"embedding {args.embedding_contract} at {embedding_url}\n")
        print(f"{'first stage':<12} {'run':<9} {'nDCG@10':>8} {'MRR@10':>8} {'Recall@k':>9} {'p50 ms':>8} "
              f"{'p95 ms':>8}")
        for r in (*report.rows, *report.stage_rows):
            print(f"{r.first_stage:<12} {r.run:<9} {r.ndcg:8.4f} {r.mrr:8.4f} {r.recall:9.4f} {r.p50_ms:8.1f} "
                  f"{r.p95_ms:8.1f}")
    finally:
        if not args.keep:
            run("teardown")
        for server in started:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
