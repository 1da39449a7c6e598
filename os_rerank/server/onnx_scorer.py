"""ONNX Runtime forward pass for CrossEncoderScorer (`backend="onnx"`).

The model directory may hold a `model.onnx` (inputs named like the tokenizer's outputs, first output the logits);
then torch is not needed. Otherwise the transformers model is exported once per process (torch's TorchScript-based
exporter, opset 17, dynamic batch and sequence axes) into a temporary directory. `quantize="int8"` adds ONNX
Runtime dynamic int8 quantization (per-channel weights) of the encoder's MatMuls; the classification head stays
fp32. Measured on MiniLM-L6 (bench/serve_bench.py): fp32 ONNX Runtime gives the torch scores to ~1e-5 and is
somewhat faster than torch on 2 cores; int8 is ~2x faster but moved logits by several units on the benchmark model,
reordering its top 10.

`OpenVinoForward` runs the same ONNX file on OpenVINO's CPU plugin (`backend="openvino"`), pinned to fp32: on a CPU
with AMX or AVX512-BF16 the plugin otherwise computes in bf16 by default, which reordered the bench model's top 10.

Imports of onnxruntime, onnx, openvino and torch happen inside functions: `os_rerank.server` imports without them.
"""

from __future__ import annotations

import queue
import tempfile
import warnings
from pathlib import Path
from typing import Any


class OnnxForward:
    """`__call__(batch: dict of int64 numpy arrays) -> float32 numpy logits (batch, labels)`."""

    def __init__(self, model_dir: Path, input_names: list[str], *, quantize: str = "none",
                 threads: int | None = None, torch_model: Any = None, source: Path | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        with tempfile.TemporaryDirectory(prefix="os-rerank-onnx-") as tmp:  # the session keeps the model in memory
            work = Path(tmp)
            self.exported = source is None
            source = source or export_once(torch_model, input_names, work)
            if quantize == "int8":
                quantized = work / "model.int8.onnx"
                quantize_int8(source, quantized)
                source = quantized
            self.session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, Any]) -> Any:
        return self.session.run(None, {name: batch[name] for name in self.input_names})[0]


class OpenVinoForward:
    """`__call__(batch) -> float32 numpy logits (batch, labels)` on OpenVINO's CPU plugin, in fp32."""

    def __init__(self, input_names: list[str], *, threads: int | None = None, torch_model: Any = None,
                 source: Path | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        with tempfile.TemporaryDirectory(prefix="os-rerank-openvino-") as tmp:  # compiled: the file is not needed after
            self.exported = source is None
            source = source or export_once(torch_model, input_names, Path(tmp))
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self.compiled = core.compile_model(core.read_model(str(source)), "CPU", config)
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        # An infer request holds its own buffers and is not thread-safe; the server's threads each take one.
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def __call__(self, batch: dict[str, Any]) -> Any:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            result = request.infer({name: batch[name] for name in self.input_names})
            return next(iter(result.values())).copy()  # the request's buffer is reused by its next call
        finally:
            self._requests.put(request)


def export_once(torch_model: Any, input_names: list[str], folder: Path) -> Path:
    """The model exported to `folder`/model.onnx, for a directory that holds no export of its own."""
    if torch_model is None:
        raise ValueError("no model.onnx and no torch model to export")
    path = folder / "model.onnx"
    export(torch_model, input_names, path)
    return path


def export(model: Any, input_names: list[str], path: Path) -> None:
    """Export a transformers sequence classifier to ONNX with dynamic batch and sequence axes."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(input_names, tensors, strict=True))).logits

    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo (onnxscript)
        torch.onnx.export(Logits().eval(), dummy, str(path), input_names=input_names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 (per-channel weights) for the encoder's MatMul/Gemm nodes; head nodes are left in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source)).graph
    head = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and "encoder" not in n.name]
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=head,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
