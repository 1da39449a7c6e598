"""A BERT encoder as an ONNX graph, written from its safetensors weights with numpy and onnx.helper: no torch.

Why build it by hand: the usual way to an ONNX file is torch's exporter, and torch is not in the default install
or in CI (PyPI's Linux torch is the CUDA build). A BERT encoder is small enough to spell out: embeddings (word +
position + token type) and LayerNorm, then per layer self-attention with the attention mask (masked positions get
the float32 minimum added before the softmax, as transformers does), the output projection, residual and
LayerNorm, the feed-forward with exact (erf) GELU, residual and LayerNorm. The graph's inputs are `input_ids`,
`token_type_ids` and `attention_mask` (int64, batch x sequence), its one output `last_hidden_state` (float32,
batch x sequence x hidden), the names of a Hugging Face export, so the embedder reads either.

Opset 17 (LayerNormalization; no Gelu op before 20): the ONNX Runtime of the SageMaker toolkit venv runs it too.
tests/fakes/bert_reference.py is an independent numpy forward the tests compare this graph with.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

OPSET = 17
# Bump when the graph changes: the cache key includes it, so an old build is never reused.
BUILDER_VERSION = "1"


class BertOnnxError(ValueError):
    """The directory is not a BERT encoder this builder can write (the message says what is missing)."""


def read_bert_config(model_dir: Path) -> dict[str, Any]:
    """The config.json fields the graph needs, checked: a BERT with absolute positions and GELU."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BertOnnxError(f"{model_dir}/config.json: {exc}") from None
    if config.get("model_type") != "bert":
        raise BertOnnxError(f"{model_dir}: model_type {config.get('model_type')!r}; the ONNX builder writes BERT "
                            "encoders only (put an ONNX export, model.onnx, in the directory instead)")
    if config.get("hidden_act", "gelu") != "gelu":
        raise BertOnnxError(f"{model_dir}: hidden_act {config.get('hidden_act')!r}; the ONNX builder writes "
                            "'gelu' (erf) only")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise BertOnnxError(f"{model_dir}: position_embedding_type {config.get('position_embedding_type')!r}; "
                            "the ONNX builder writes 'absolute' only")
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    if hidden % heads:
        raise BertOnnxError(f"{model_dir}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return {"hidden": hidden, "heads": heads, "layers": int(config["num_hidden_layers"]),
            "eps": float(config.get("layer_norm_eps", 1e-12))}


def load_bert_weights(model_dir: Path) -> dict[str, Any]:
    """The encoder's float32 tensors from model.safetensors, named without a `bert.` prefix."""
    path = model_dir / "model.safetensors"
    if not path.is_file():
        raise BertOnnxError(f"{model_dir}: no model.safetensors to build an ONNX graph from")
    import numpy as np
    from safetensors.numpy import load_file

    out = {}
    for name, value in load_file(str(path)).items():
        name = name.removeprefix("bert.")
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[name] = value.astype(np.float32) if value.dtype != np.int64 else value
    return out


def build_bert_onnx(model_dir: Path, target: Path) -> Path:
    """Write the encoder of `model_dir` (config.json + model.safetensors) to `target` as ONNX; returns `target`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cfg = read_bert_config(model_dir)
    weights = load_bert_weights(model_dir)
    hidden, heads, eps = cfg["hidden"], cfg["heads"], cfg["eps"]
    head_dim = hidden // heads
    inits: list[Any] = []
    nodes: list[Any] = []

    def weight(name: str, *, transpose: bool = False) -> str:
        try:
            value = weights[name]
        except KeyError:
            raise BertOnnxError(f"{model_dir}/model.safetensors: no tensor {name!r}") from None
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value.T if transpose else value), name))
        return name

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, out: str) -> str:
        product = node("MatMul", [x, weight(f"{prefix}.weight", transpose=True)], f"{out}.matmul")
        return node("Add", [product, weight(f"{prefix}.bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(f"{prefix}.weight"), weight(f"{prefix}.bias")], out,
                    axis=-1, epsilon=eps)

    const("zero", np.array([0], dtype=np.int64))
    const("one", np.array([1], dtype=np.int64))
    const("mask_axes", np.array([1, 2], dtype=np.int64))
    const("one_f", np.array(1.0, dtype=np.float32))
    const("mask_min", np.array(np.finfo(np.float32).min, dtype=np.float32))
    const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), dtype=np.float32))
    const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))

    # Embeddings: positions 0..S-1 are a slice of the table (absolute positions).
    words = node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"], "emb.words")
    types = node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"], "emb.types")
    shape = node("Shape", ["input_ids"], "emb.shape")
    length = node("Gather", [shape, "one"], "emb.length", axis=0)
    positions = node("Slice", [weight("embeddings.position_embeddings.weight"), "zero", length], "emb.positions")
    summed = node("Add", [node("Add", [words, types], "emb.words_types"), positions], "emb.sum")
    x = layer_norm(summed, "embeddings.LayerNorm", "emb.out")

    # The mask as an additive bias over keys: 0 where attended, float32 min where padded; (B, 1, 1, S).
    mask = node("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)
    inverted = node("Sub", ["one_f", mask], "mask.inverted")
    bias = node("Unsqueeze", [node("Mul", [inverted, "mask_min"], "mask.scaled"), "mask_axes"], "mask.bias")

    for i in range(cfg["layers"]):
        p = f"encoder.layer.{i}"
        q = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.query", f"l{i}.q"), "split_heads"],
                                    f"l{i}.q.split")], f"l{i}.q.heads", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.key", f"l{i}.k"), "split_heads"],
                                    f"l{i}.k.split")], f"l{i}.k.heads", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.value", f"l{i}.v"), "split_heads"],
                                    f"l{i}.v.split")], f"l{i}.v.heads", perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"l{i}.qk"), "scale"], f"l{i}.scores")
        probs = node("Softmax", [node("Add", [scores, bias], f"l{i}.masked")], f"l{i}.probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"l{i}.context.heads")], f"l{i}.context.t",
                       perm=[0, 2, 1, 3])
        context = node("Reshape", [context, "merge_heads"], f"l{i}.context")
        attended = linear(context, f"{p}.attention.output.dense", f"l{i}.attn.dense")
        x = layer_norm(node("Add", [attended, x], f"l{i}.attn.residual"), f"{p}.attention.output.LayerNorm",
                       f"l{i}.attn.out")
        inner = linear(x, f"{p}.intermediate.dense", f"l{i}.ffn.inner")
        erf = node("Erf", [node("Mul", [inner, "inv_sqrt2"], f"l{i}.gelu.scaled")], f"l{i}.gelu.erf")
        gate = node("Mul", [node("Add", [erf, "one_f"], f"l{i}.gelu.plus1"), "half"], f"l{i}.gelu.gate")
        gelu = node("Mul", [inner, gate], f"l{i}.gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}.ffn.out")
        x = layer_norm(node("Add", [out, x], f"l{i}.ffn.residual"), f"{p}.output.LayerNorm", f"l{i}.out")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))

    def int_input(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        nodes, "bert_encoder", [int_input("input_ids"), int_input("token_type_ids"), int_input("attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="os-rerank")
    model.ir_version = 8  # readable by the ONNX Runtime releases that still run on numpy 1 (the toolkit venv)
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")  # two builders never share one
    onnx.save(model, str(partial))
    partial.replace(target)  # atomic: a reader never sees half a file
    return target
