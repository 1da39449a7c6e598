"""How fast `os-rerank serve --embedding-model` embeds, and how close its vectors are to sentence-transformers'.

Prints figures; not a test. One endpoint hosting the embedding model alone (in-process, on a free port, over HTTP
through the SageMaker runtime route, as ML Commons' connector calls it), or the one at --url. For each batch size
(texts per request) it sends --count requests back to back, each of that many passages of data/eval (Korean,
Hindi, English, 5-60 words), and prints texts/s and the per-request latency p50 / p95. A warm-up request per size
is not counted.

With --check (and sentence-transformers + torch importable, which is not the case in CI): the max 1 - cosine
between the served vectors and sentence-transformers' `encode(normalize_embeddings=True)` over the corpus.

    python bench/embed_bench.py [--model minilm] [--batch 1 8 32 64] [--count 20] [--threads N] [--check]
    python bench/embed_bench.py --url http://127.0.0.1:8080 --endpoint-name os-rerank-embedding
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus() -> list[str]:
    lines = (ROOT / "data" / "eval" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["passage_text"] for line in lines if line.strip()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> Any:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200:
        raise SystemExit(f"{path}: {reply.status} {data[:300]!r}")
    return json.loads(data)


def run(url: str, endpoint: str, contract_name: str, batches: list[int], count: int) -> list[list[float]]:
    """Print one row per batch size; return the corpus' vectors as served (for --check)."""
    from os_rerank.embedding_contracts import get_embedding_contract

    contract = get_embedding_contract(contract_name)
    texts = corpus()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=300)
    path = f"/endpoints/{endpoint}/invocations"
    print(f"{'texts/request':>13}  {'texts/s':>8}  {'p50 ms':>8}  {'p95 ms':>8}")
    for size in batches:
        bodies = [json.dumps(contract.build_request([texts[(i * size + k) % len(texts)] for k in range(size)]),
                             ensure_ascii=False).encode() for i in range(count + 1)]
        post(conn, path, bodies[0])  # warm-up
        latencies = []
        started = time.perf_counter()
        for body in bodies[1:]:
            t = time.perf_counter()
            post(conn, path, body)
            latencies.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - started
        print(f"{size:>13}  {size * count / elapsed:>8.1f}  {statistics.median(latencies):>8.1f}  "
              f"{percentile(latencies, 0.95):>8.1f}", flush=True)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 32):
        chunk = texts[start : start + 32]
        answer = post(conn, path, json.dumps(contract.build_request(chunk), ensure_ascii=False).encode())
        vectors.extend(contract.parse_response(answer, len(chunk)))
    return vectors


def check(model: str, vectors: list[list[float]]) -> None:
    try:
        import numpy as np
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        print(f"check: skipped, sentence-transformers/torch not importable ({exc})")
        return
    from os_rerank.server.embedders import resolve_embedding_dir

    directory, label = resolve_embedding_dir(model)
    reference = SentenceTransformer(str(directory), device="cpu").encode(corpus(), normalize_embeddings=True)
    gaps = [1.0 - float(np.dot(np.asarray(v, dtype=np.float64), r)) for v, r in zip(vectors, reference, strict=True)]
    print(f"check: {label} vs sentence-transformers on torch, {len(gaps)} texts: max 1 - cosine {max(gaps):.2e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", help="preset name or model directory (default: minilm)")
    parser.add_argument("--url", default=None, help="bench a running server instead of starting one")
    parser.add_argument("--endpoint-name", default="os-rerank-embedding")
    parser.add_argument("--contract", default="vector-embedding")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32, 64], help="texts per request")
    parser.add_argument("--count", type=int, default=20, help="requests per batch size")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: one per core)")
    parser.add_argument("--check", action="store_true", help="compare with sentence-transformers (needs torch)")
    args = parser.parse_args()
    if args.url is not None:
        vectors = run(args.url, args.endpoint_name, args.contract, args.batch, args.count)
    else:
        from os_rerank.embedding_contracts import get_embedding_contract
        from os_rerank.server.app import EndpointServer
        from os_rerank.server.embedders import load_embedder

        started = time.perf_counter()
        embedder = load_embedder(args.model, environ=os.environ, threads=args.threads)
        print(f"{embedder.name}; loaded in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, load "
              f"average {os.getloadavg()[0]:.1f}")
        with EndpointServer(None, None, embedder=embedder, embedding_contract=get_embedding_contract(args.contract),
                            embedding_endpoint_name=args.endpoint_name) as server:
            vectors = run(server.url, args.endpoint_name, args.contract, args.batch, args.count)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.check:
        check(args.model, vectors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
