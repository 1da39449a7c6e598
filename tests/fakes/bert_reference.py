"""An independent numpy forward of a BERT sentence embedder, for checking the ONNX graph and the embedder.

Written from the BERT paper's and transformers' definitions, not from os_rerank/server/bert_onnx.py: float64, one
text at a time, no padding and so no mask, each attention head in a loop. Then mean pooling over the tokens and
L2 normalisation (sentence-transformers' Pooling(mean) + Normalize). Differences from the served vectors can come
only from float32 arithmetic (about 1e-7) or from a bug.

`build_tiny_bert` writes a small random BERT in the Hugging Face layout (config.json, model.safetensors, a real
WordPiece tokenizer, sentence-transformers' pooling files), so the whole path runs in a second without the
83 MB MiniLM package.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tests.fakes.tiny_onnx import CORPUS


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def encode_one(weights: dict[str, np.ndarray], config: dict[str, Any], ids: list[int]) -> np.ndarray:
    """last_hidden_state (tokens x hidden) of one unpadded sequence, token type 0 throughout."""
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in weights.items() if v.dtype != np.int64}
    eps, heads = float(config.get("layer_norm_eps", 1e-12)), int(config["num_attention_heads"])
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    size = x.shape[1] // heads
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{part}") for part in ("query", "key", "value"))
        context = np.zeros_like(x)
        for h in range(heads):
            cols = slice(h * size, (h + 1) * size)
            logits = q[:, cols] @ k[:, cols].T / math.sqrt(size)
            logits = np.exp(logits - logits.max(-1, keepdims=True))
            context[:, cols] = (logits / logits.sum(-1, keepdims=True)) @ v[:, cols]
        x = _layer_norm(x + dense(context, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        ffn = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
        x = _layer_norm(x + ffn, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def reference_embeddings(model_dir: Path, texts: list[str], *, max_length: int) -> list[np.ndarray]:
    """The unit-length mean-pooled embedding of each text, tokenized alone and truncated to max_length tokens."""
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(model_dir / "model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    out = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        pooled = encode_one(weights, config, list(ids)).mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return out


def build_tiny_bert(directory: Path, *, hidden: int = 32, heads: int = 4, layers: int = 2, seed: int = 5,
                    max_seq_length: int = 24) -> Path:
    """A random BERT sentence embedder in the Hugging Face + sentence-transformers layout; returns `directory`."""
    from safetensors.numpy import save_file
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    words = sorted({w for text in CORPUS for w in text.lower().split()})
    chars = sorted({c for text in CORPUS for c in text.lower() if not c.isspace()})
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
                                *words]))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    wordpiece = BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=True)
    BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                      cls_token="[CLS]", mask_token="[MASK]", model_max_length=64).save_pretrained(directory)
    positions, inner = 64, hidden * 4
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": hidden,
              "num_attention_heads": heads, "num_hidden_layers": layers, "intermediate_size": inner,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": positions,
              "type_vocab_size": 2, "vocab_size": len(vocab), "pad_token_id": 0}
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    rng = np.random.default_rng(seed)

    def r(*shape: int, scale: float = 0.2) -> np.ndarray:
        return rng.normal(0, scale, shape).astype(np.float32)

    weights = {"embeddings.word_embeddings.weight": r(len(vocab), hidden, scale=1.0),
               "embeddings.position_embeddings.weight": r(positions, hidden),
               "embeddings.token_type_embeddings.weight": r(2, hidden),
               "embeddings.LayerNorm.weight": 1 + r(hidden, scale=0.1), "embeddings.LayerNorm.bias": r(hidden)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, (rows, cols) in {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
                                   "attention.self.value": (hidden, hidden),
                                   "attention.output.dense": (hidden, hidden), "intermediate.dense": (inner, hidden),
                                   "output.dense": (hidden, inner)}.items():
            weights[p + name + ".weight"] = r(rows, cols)
            weights[p + name + ".bias"] = r(rows)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[p + name + ".weight"] = 1 + r(hidden, scale=0.1)
            weights[p + name + ".bias"] = r(hidden)
    save_file(weights, str(directory / "model.safetensors"))
    return directory
