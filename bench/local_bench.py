"""Measure the real local node and the rerank path through it. Prints figures; not a test.

1. Artifacts: every file a node is made of, fetched into an empty cache (size, seconds, MB/s), from the repository
   os-rerank chooses (--repository to pick another).
2. Assembly: building the node from the (now warm) cache; first start until green; stop; warm start; RSS.
3. setup: wall time of a first `os-rerank setup` (everything created, verify included) and of a second (no changes).
4. The pipeline's own latency at 10/50/100 documents: p50/p95 of a search through the rerank pipeline minus the same
   search without it, against an endpoint that does no work (constant scores), so the endpoint's compute is out of
   the figure; and the same endpoint called directly, to show the transport's share.

    python bench/local_bench.py [--version 2.19.1] [--repeats 30] [--keep]

The node and a cache of its artifacts are built in a temporary folder (port 9280) and removed afterwards (--keep
keeps them).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PORT = 9280
SIZES = (10, 50, 100)


class ZeroWork:
    """A scorer that does no work: a pair's score is 1 / (1 + its position), so the endpoint's compute is ~0."""

    name = "zero-work (scores by position)"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [1.0 / (1 + i) for i in range(len(pairs))]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="2.19.1")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--repository", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from os_rerank.local import build, host, process
    from os_rerank.local import distribution as dist
    from os_rerank.local import node as local
    from os_rerank.local.maven import Cache
    from os_rerank.local.maven_repository import choose_repository

    work = Path(tempfile.mkdtemp(prefix="os-rerank-bench-", dir="/var/tmp" if os.geteuid() == 0 else None))
    os.chmod(work, 0o755)
    home, cache_root = work / "nodes", work / "cache"
    repo = choose_repository(args.repository, os.environ)
    wanted = local.Wanted("bench", args.version, PORT, False, "1g")

    # 1. artifacts into an empty cache
    cache = Cache(cache_root, repo)
    started = time.monotonic()
    fetched = [cache.fetch(a) for a in build.artifacts_for(wanted)]
    size = sum(f.path.stat().st_size for f in fetched)
    seconds = time.monotonic() - started
    print(f"artifacts     {len(fetched)} top-level files, {size / 1e6:.0f} MB in {seconds:.1f} s "
          f"({size / 1e6 / seconds:.0f} MB/s) from {repo.shown}")

    # 2. assembly (module jars and POMs are fetched here too, a few MB), first and warm start
    java = host.find_java(dist.parse_version(args.version), os.environ)
    run_as = host.node_user(create=True)
    home.mkdir(parents=True)
    os.chmod(home, 0o755)
    started = time.monotonic()
    node = build.build_node(wanted, home, cache, java, run_as)
    print(f"assembly      {time.monotonic() - started:.1f} s (unzip, modules, 4 plugins through opensearch-plugin)")
    try:
        first = process.start_node(node, run_as)
        rss = process.rss_bytes(process.node_pid(node) or 0) or 0
        print(f"first start   {first:.1f} s to green (RSS {rss / 1e9:.2f} GB)")
        process.stop_node(node)
        warm = process.start_node(node, run_as)
        print(f"warm start    {warm:.1f} s to green")
        measure_setup_and_pipeline(node, args.repeats, work)
        rss = process.rss_bytes(process.node_pid(node) or 0) or 0
        print(f"RSS           {rss / 1e9:.2f} GB after setup and the searches (heap {wanted.heap})")
    finally:
        if args.keep:
            print(f"kept: {node.folder} (os-rerank local down --dir {home} --name bench --purge)")
        else:
            process.stop_node(node)
            shutil.rmtree(work, ignore_errors=True)  # the node and its own cache of the artifacts
    return 0


def measure_setup_and_pipeline(node: object, repeats: int, work: Path) -> None:
    from opensearchpy import OpenSearch

    from os_rerank.cli import main as cli
    from os_rerank.contracts import get_contract
    from os_rerank.server.app import EndpointServer

    os.environ.update(AWS_ACCESS_KEY_ID="AKIDBENCHFAKEKEY0001", AWS_SECRET_ACCESS_KEY="bench-secret")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    endpoint = EndpointServer(get_contract("hf-text-classification"), ZeroWork(), endpoint_name="bench",
                              credentials={"AKIDBENCHFAKEKEY0001": "bench-secret"}).start()
    try:
        url = node.url  # type: ignore[attr-defined]
        config = work / "bench.yaml"
        config.write_text(json.dumps({
            "opensearch": {"url": url},
            "sagemaker": {"region": "us-west-2", "endpoint_url": f"{endpoint.url}/endpoints/bench/invocations",
                          "local_endpoint_url": endpoint.url},
            "verify": {"expected_top": None},
        }), encoding="utf-8")
        for label in ("first setup ", "second setup"):
            out = io.StringIO()
            started = time.monotonic()
            code = cli(["setup", "--config", str(config), "--json"], environ=dict(os.environ), stdout=out,
                       stderr=out)
            took = time.monotonic() - started
            writes = json.loads(out.getvalue())["writes"] if code == 0 else f"failed ({out.getvalue()[-300:]})"
            print(f"{label}  {took:.2f} s, {writes} writes (verify included)")

        client = OpenSearch(hosts=[url], timeout=60)
        model_id = client.transport.perform_request("GET", "/_search/pipeline/rerank_pipeline_sagemaker")[
            "rerank_pipeline_sagemaker"]["response_processors"][0]["rerank"]["ml_opensearch"]["model_id"]
        print(f"pipeline      p50 / p95 ms over {repeats} requests; zero-work endpoint; "
              f"rerank overhead = reranked - plain")
        for n in SIZES:
            index = f"bench-{n}"
            client.indices.delete(index=index, ignore_unavailable=True)
            client.indices.create(index=index, body={"mappings": {"properties": {"passage_text": {"type": "text"}}}})
            lines = []
            for i in range(n):
                lines.append(json.dumps({"index": {"_index": index, "_id": str(i)}}))
                lines.append(json.dumps({"passage_text": f"capital city number {i} " + "word " * 100}))
            client.bulk(body="\n".join(lines) + "\n", refresh=True)
            body = {"size": n, "query": {"match": {"passage_text": "capital city"}},
                    "ext": {"rerank": {"query_context": {"query_text": "what is the capital city?"}}}}
            times: dict[str, list[float]] = {"plain": [], "reranked": [], "predict": []}
            docs = [f"capital city number {i} " + "word " * 100 for i in range(n)]
            for _ in range(repeats):
                for kind, pipeline in (("plain", "_none"), ("reranked", "rerank_pipeline_sagemaker")):
                    started = time.perf_counter()
                    client.transport.perform_request("POST", f"/{index}/_search",
                                                     params={"search_pipeline": pipeline}, body=body)
                    times[kind].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                client.transport.perform_request("POST", f"/_plugins/_ml/_predict/text_similarity/{model_id}",
                                                 body={"query_text": "q", "text_docs": docs})
                times["predict"].append((time.perf_counter() - started) * 1000)
            overhead = [r - p for r, p in zip(times["reranked"], times["plain"], strict=True)]
            print(f"  {n:>3} docs   plain {pct(times['plain'], .5):6.1f} / {pct(times['plain'], .95):6.1f}   "
                  f"reranked {pct(times['reranked'], .5):6.1f} / {pct(times['reranked'], .95):6.1f}   "
                  f"overhead {statistics.median(overhead):6.1f} / {pct(overhead, .95):6.1f}   "
                  f"_predict alone {pct(times['predict'], .5):6.1f} / {pct(times['predict'], .95):6.1f}")
            client.indices.delete(index=index)
    finally:
        endpoint.stop()


if __name__ == "__main__":
    sys.exit(main())
