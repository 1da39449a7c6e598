"""A tiny cross-encoder as ONNX, built without torch: what `serve --model DIR` loads when DIR holds model.onnx.

The graph is small but has what the scorer must get right: it reads `input_ids`, `token_type_ids` and
`attention_mask`, and padding changes its answer unless the mask is honoured. logits = mean over the unmasked
positions of (word embedding + token-type embedding + position embedding), through tanh, times a head matrix, plus
a bias. `reference_logits` computes the same thing in numpy, one pair at a time without padding, so a test can
check batching, padding, truncation and the sigmoid/softmax head to float precision. The tokenizer is a real
WordPiece tokenizer saved in the Hugging Face layout (no torch needed for either).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CORPUS = [
    "Carson City is the capital city of the American state of Nevada.",
    "Washington, D.C. is the capital of the United States.",
    "Capital punishment has existed in the United States since before it was a country.",
    "What is the capital of the United States?",
    "대한민국의 수도는 서울이다", "भारत की राजधानी नई दिल्ली है", 'quotes " \\ and tabs',
]
HIDDEN = 16
POSITIONS = 64


def build(directory: Path, num_labels: int, seed: int = 7) -> Path:
    """Write model.onnx, config.json, the tokenizer and weights.npz (for the reference) to `directory`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    words = sorted({w for text in CORPUS for w in text.lower().split()})
    chars = sorted({c for text in CORPUS for c in text.lower() if not c.isspace()})
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
                                *words]))
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    wordpiece = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                                  model_max_length=POSITIONS)
    tokenizer.save_pretrained(directory)
    (directory / "config.json").write_text(json.dumps({
        "model_type": "bert", "architectures": ["BertForSequenceClassification"], "num_labels": num_labels,
        "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)},
        "label2id": {f"LABEL_{i}": i for i in range(num_labels)},
        "vocab_size": len(vocab), "max_position_embeddings": POSITIONS, "hidden_size": HIDDEN,
    }, indent=2), encoding="utf-8")

    rng = np.random.default_rng(seed * 10 + num_labels)
    weights = {
        "words": rng.normal(0, 1, (len(vocab), HIDDEN)).astype(np.float32),
        "types": rng.normal(0, 1, (2, HIDDEN)).astype(np.float32),
        "positions": rng.normal(0, 0.5, (POSITIONS, HIDDEN)).astype(np.float32),
        "head": rng.normal(0, 1, (HIDDEN, num_labels)).astype(np.float32),
        "bias": rng.normal(0, 0.1, (num_labels,)).astype(np.float32),
    }
    np.savez(directory / "weights.npz", **weights)

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    types = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_labels])
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    inits += [numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
              numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
              numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")]
    nodes = [
        helper.make_node("Gather", ["words", "input_ids"], ["w"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["t"]),
        helper.make_node("Shape", ["input_ids"], ["shape"]),
        helper.make_node("Gather", ["shape", "axis1"], ["seq_len"], axis=0),  # [S]
        helper.make_node("Slice", ["positions", "zero", "seq_len"], ["p"]),  # (S, H)
        helper.make_node("Add", ["w", "t"], ["wt"]),
        helper.make_node("Add", ["wt", "p"], ["x"]),  # (B, S, H)
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),  # (B, S, 1)
        helper.make_node("Mul", ["x", "m3"], ["xm"]),
        helper.make_node("ReduceSum", ["xm", "axis1"], ["sum"], keepdims=0),  # (B, H)
        helper.make_node("ReduceSum", ["m3", "axis1"], ["count"], keepdims=0),  # (B, 1)
        helper.make_node("Div", ["sum", "count"], ["mean"]),
        helper.make_node("Tanh", ["mean"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "head"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "tiny-cross-encoder", [ids, types, mask], [logits], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="os-rerank tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    return directory


def reference_logits(directory: Path, pairs: list[tuple[str, str]], max_length: int) -> np.ndarray:
    """The model's logits for each pair alone (no padding), in float64."""
    from transformers import AutoTokenizer

    weights = np.load(directory / "weights.npz")
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    out = []
    for query, doc in pairs:
        enc = tokenizer([query], [doc], truncation="only_second", max_length=max_length)
        ids, types = np.array(enc["input_ids"][0]), np.array(enc["token_type_ids"][0])
        x = (weights["words"][ids] + weights["types"][types] + weights["positions"][: len(ids)]).astype(np.float64)
        out.append(np.tanh(x.mean(axis=0)) @ weights["head"].astype(np.float64) + weights["bias"])
    return np.array(out)


def reference_scores(directory: Path, pairs: list[tuple[str, str]], max_length: int = POSITIONS) -> list[float]:
    """What the scorer must return: sigmoid of one logit, or softmax P(label 1) of two."""
    logits = reference_logits(directory, pairs, max_length)
    if logits.shape[1] == 1:
        return (1 / (1 + np.exp(-logits[:, 0]))).tolist()
    return (1 / (1 + np.exp(logits[:, 0] - logits[:, 1]))).tolist()
