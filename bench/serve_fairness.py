"""How long a small request waits while a big one is being scored. Prints figures; not a test.

One `os-rerank serve` endpoint (in-process, on a free port, over HTTP). A background client sends big requests
(--big documents, default 1,000) back to back; meanwhile a second client sends small requests (--small, default 10)
and times each. Three rows, p50 / p95 / max of the small request's latency:

  alone          the small requests with nothing else running
  in turns       beside the big ones, as serve runs (the scorer works in first-come-first-served turns)
  one turn       beside the big ones, with the scorer given one turn for a whole request (how serve ran before)

plus how long one big request takes alone. Scorer: the lexical scorer by default, or --model DIR (a cross-encoder
directory with model.onnx; needs `pip install 'os-rerank[serve]'`).

    python bench/serve_fairness.py [--model DIR] [--big 1000] [--small 10] [--count 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["capital", "city", "river", "government", "parliament", "history", "population", "museum", "harbour",
         "railway", "mountain", "university", "market", "cathedral", "bridge", "festival", "language", "climate"]


def document(rng: random.Random, words: int = 100) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


class OneTurn:
    """The scorer without score_in_turns: the server gives it one turn for the whole request."""

    def __init__(self, scorer: Any) -> None:
        self.inner = scorer
        self.name = scorer.name

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return list(self.inner.score(pairs))


def post(port: int, body: bytes) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"the endpoint answered {response.status}")
    return time.perf_counter() - started


def small_latencies(port: int, small: bytes, count: int, big: bytes | None) -> list[float]:
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            post(port, big or b"")

    worker = threading.Thread(target=hammer, daemon=True) if big is not None else None
    if worker is not None:
        worker.start()
        time.sleep(0.2)  # let the first big request get going
    try:
        out = []
        for _ in range(count):
            out.append(post(port, small))
            time.sleep(0.01)
        return out
    finally:
        stop.set()
        if worker is not None:
            worker.join()


def row(label: str, values: Sequence[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"  {label:<11} {statistics.median(ms):9.1f} {p95:9.1f} {ms[-1]:9.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a cross-encoder directory (default: lexical)")
    parser.add_argument("--big", type=int, default=1000, help="documents in the big request (default: 1000)")
    parser.add_argument("--small", type=int, default=10, help="documents in the small request (default: 10)")
    parser.add_argument("--count", type=int, default=30, help="small requests per row (default: 30)")
    args = parser.parse_args()

    from os_rerank.contracts import get_contract
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.scorers import load_scorer

    scorer = load_scorer(args.model)
    contract = get_contract("tei-rerank")
    rng = random.Random(7)
    big = json.dumps(contract.build_request("capital of the country", [document(rng) for _ in range(args.big)]))
    small = json.dumps(contract.build_request("capital city", [document(rng) for _ in range(args.small)]))
    print(f"scorer: {scorer.name}; big {args.big} documents, small {args.small}, ~100 words each; "
          f"{args.count} small requests per row")
    results = {}
    for label, served in (("alone", scorer), ("in turns", scorer), ("one turn", OneTurn(scorer))):
        with EndpointServer(contract, served, max_documents=max(args.big, args.small),
                            max_body_bytes=64 << 20) as server:
            if label == "alone":
                post(server.port, small.encode())  # warm-up
                results["big alone"] = [post(server.port, big.encode()) for _ in range(3)]
                results[label] = small_latencies(server.port, small.encode(), args.count, None)
            else:
                results[label] = small_latencies(server.port, small.encode(), args.count, big.encode())
    print(f"  one big request alone: {statistics.median(results['big alone']) * 1000:.0f} ms")
    print(f"  {'small':<11} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for label in ("alone", "in turns", "one turn"):
        print(row(label, results[label]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
