"""Scorers: turn (query, document) pairs into relevance scores, in input order.

Two kinds, one interface (`Scorer.score(pairs) -> list[float]`, `Scorer.name`):

* `CrossEncoderScorer` loads a Hugging Face sequence-classification model from a local directory (never the hub:
  `local_files_only=True`), run by ONNX Runtime when the directory holds an ONNX export (no torch needed), else by
  torch. One logit (the MS MARCO cross-encoders) -> sigmoid of it, which is what the stock
  SageMaker HF container's text-classification pipeline returns for such a model. Two labels -> softmax probability
  of label 1 (label 1 is "relevant" in every two-label reranker we know of). Any other label count is refused.
  Pairs are truncated to `max_length` tokens, cutting the document (`only_second`) and falling back to
  `longest_first` for a pair whose query alone does not fit. Speed: pairs are tokenized once, sorted by length and
  padded per mini-batch, under `torch.inference_mode`; `quantize="int8"` applies dynamic int8 quantization to the
  encoder's Linear layers and `quantize="bf16"` runs the model under bfloat16 autocast (both change scores slightly;
  check the ranking with bench/serve_bench.py before trusting them).
* `LexicalScorer` (lexical.py) needs no weights and never imports torch, so demos and tests run end to end anywhere.
  See its docstring for the function.

Scorers are not thread-safe; the server serializes their work (in turns, see Scorer).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

Pair = tuple[str, str]

QUANTIZE_CHOICES = ("none", "int8", "bf16")
BACKEND_CHOICES = ("auto", "torch", "onnx", "openvino")


def onnx_file(model_dir: Path) -> Path | None:
    """The ONNX export in a model directory: `model.onnx`, or the Hugging Face hub layout's `onnx/model.onnx`."""
    for candidate in (model_dir / "model.onnx", model_dir / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


def resolve_backend(model_dir: Path, backend: str) -> str:
    """`auto` is ONNX Runtime when the directory holds an ONNX export, else torch."""
    if backend != "auto":
        return backend
    return "onnx" if onnx_file(model_dir) is not None else "torch"


class ScorerError(Exception):
    """A scorer cannot be built (missing files, unsupported model); the message says what to fix."""


class Scorer(Protocol):
    """Anything that scores pairs: `name` says what it is (shown on /ping and at start-up).

    A scorer may also offer `score_in_turns(pairs, turn) -> list[float]`: the same scores, with the work cut into
    pieces that each run inside `with turn():`. The server passes a first-come-first-served turn shared by all
    requests, so a request of 2,000 documents and one of 10 take turns a batch at a time instead of the small one
    waiting for the whole big one. Without it, the server gives `score` one turn for the whole request.
    """

    name: str

    def score(self, pairs: Sequence[Pair]) -> list[float]: ...


Turn = Callable[[], AbstractContextManager[object]]


def no_turns() -> AbstractContextManager[object]:
    """The turn of a scorer used on its own: nothing to wait for."""
    return contextlib.nullcontext()


# --- the lexical scorer -------------------------------------------------------------------------------------------
# --- the cross-encoder ---------------------------------------------------------------------------------------------


class CrossEncoderScorer:
    """A sequence-classification cross-encoder loaded from the local directory `path` (config, weights, tokenizer)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_length: int = 512,
        batch_size: int = 32,
        quantize: str = "none",
        threads: int | None = None,
        backend: str = "auto",
        device: str | None = None,
    ) -> None:
        if quantize not in QUANTIZE_CHOICES:
            raise ScorerError(f"quantize: expected one of {', '.join(QUANTIZE_CHOICES)}, got {quantize!r}")
        if backend not in BACKEND_CHOICES:
            raise ScorerError(f"backend: expected one of {', '.join(BACKEND_CHOICES)}, got {backend!r}")
        if max_length < 8:
            raise ScorerError(f"max_length: expected at least 8 tokens, got {max_length}")
        if batch_size < 1:
            raise ScorerError(f"batch_size: expected at least 1, got {batch_size}")
        model_dir = Path(path)
        if not (model_dir / "config.json").is_file():
            raise ScorerError(f"{model_dir}: no config.json; expected a directory saved with save_pretrained()")
        backend = resolve_backend(model_dir, backend)
        if backend == "onnx" and quantize == "bf16":
            raise ScorerError("quantize bf16 needs --backend torch (ONNX Runtime offers none|int8)")
        if backend == "openvino" and quantize != "none":
            raise ScorerError(f"quantize {quantize} needs --backend torch or onnx (OpenVINO runs the model in fp32)")
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        self.num_labels = int(config.num_labels)
        if self.num_labels not in (1, 2):
            raise ScorerError(
                f"{model_dir}: the model has {self.num_labels} labels; a cross-encoder needs 1 (a relevance logit) "
                "or 2 (label 1 = relevant)"
            )
        self._torch: Any = None
        self.model: Any = None
        self._onnx: Any = None
        exported = onnx_file(model_dir)
        if backend == "torch" or exported is None:
            import torch
            from transformers import AutoModelForSequenceClassification

            if threads:
                torch.set_num_threads(threads)
            self._torch = torch
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True)
            model.eval()
            if backend == "torch" and quantize == "int8":
                model = _quantize_int8(torch, model)
            elif quantize == "bf16":
                _keep_head_fp32(torch, model)
            if device is not None:  # the torch backend on a GPU instance (the SageMaker handler passes "cuda")
                model = model.to(device)
            self.model = model
        names: list[str] = [k for k in ("input_ids", "token_type_ids", "attention_mask")
                             if k in self.tokenizer.model_input_names]
        if backend == "onnx":
            try:
                from .onnx_scorer import OnnxForward

                self._onnx = OnnxForward(model_dir, names, quantize=quantize, threads=threads, torch_model=self.model,
                                         source=exported)
            except ImportError as exc:
                raise ScorerError(f"--backend onnx needs onnxruntime and onnx ({exc}): pip install onnxruntime onnx"
                                  ) from exc
        elif backend == "openvino":
            try:
                from .onnx_scorer import OpenVinoForward

                self._onnx = OpenVinoForward(names, threads=threads, torch_model=self.model, source=exported)
            except ImportError as exc:
                raise ScorerError(f"--backend openvino needs openvino ({exc}): pip install 'os-rerank[openvino]'"
                                  ) from exc
        self.quantize = quantize
        self.backend = backend
        self.device = device or "cpu"
        model_max = getattr(self.tokenizer, "model_max_length", None)
        positions = getattr(config, "max_position_embeddings", None)
        limits = [n for n in (max_length, model_max, positions) if isinstance(n, int) and n > 0]
        self.max_length = min(limits)
        self.batch_size = batch_size
        head = "sigmoid of 1 logit" if self.num_labels == 1 else "softmax P(label 1) of 2 labels"
        suffix = {"torch": "", "onnx": ", onnxruntime", "openvino": ", openvino"}[backend]
        suffix += "" if quantize == "none" else f", {quantize}"
        self.name = f"cross-encoder {model_dir.name} ({head}, max {self.max_length} tokens{suffix})"

    def encode(self, pairs: Sequence[Pair]) -> list[dict[str, list[int]]]:
        """Token ids of each pair, truncated to max_length (document first; both sides if the query is too long)."""
        words = {q: self._query_words(q) for q in dict.fromkeys(q for q, _ in pairs)}
        rows: list[dict[str, list[int]] | None] = [None] * len(pairs)
        usual = [i for i, (q, _) in enumerate(pairs) if words[q] is None]
        for i, (q, d) in enumerate(pairs):
            found = words[q]
            if found is not None:  # the query alone fills max_length: both sides are cut, as below
                enc = self.tokenizer([self._cut_query(q, d, *found)], [d], truncation="longest_first",
                                     max_length=self.max_length)
                rows[i] = _rows(enc, 1)[0]
        try:
            enc = self.tokenizer([pairs[i][0] for i in usual], [pairs[i][1] for i in usual],
                                 truncation="only_second", max_length=self.max_length)
            for i, row in zip(usual, _rows(enc, len(usual)), strict=True):
                rows[i] = row
        except Exception:  # the tokenizers library raises a bare Exception when the query alone is too long
            for i in usual:
                q, d = pairs[i]
                try:
                    enc = self.tokenizer([q], [d], truncation="only_second", max_length=self.max_length)
                except Exception:
                    enc = self.tokenizer([q], [d], truncation="longest_first", max_length=self.max_length)
                rows[i] = _rows(enc, 1)[0]
        return [row for row in rows if row is not None]

    # A query of a megabyte must not be tokenized again for every document. When a query alone fills max_length,
    # only `longest_first` truncation can apply to its pairs, and its result depends on the query only through the
    # tokens it keeps (at most max_length from the start) and on whether the query or the document is the longer.
    # So the query is tokenized once, and for each document it is cut at a word boundary past both max_length and
    # the document's length, plus a margin: every pair's tokens stay exactly what the whole query would give
    # (tests/test_serve_onnx_models.py compares them).
    _CUT_MARGIN = 64

    def _query_words(self, query: str) -> tuple[list[int], list[int | None]] | None:
        """(start offset, word index) of each token of a query that alone fills max_length; else None."""
        if len(query) <= 4 * self.max_length:  # short: tokenizing it again per document is cheap
            return None
        try:
            enc = self.tokenizer(query, add_special_tokens=False, return_offsets_mapping=True)
            starts, word_ids = [start for start, _ in enc["offset_mapping"]], enc.word_ids()
        except (NotImplementedError, ValueError, TypeError):  # a slow (Python) tokenizer has neither
            return None
        return (starts, word_ids) if len(starts) >= self.max_length else None

    def _cut_query(self, query: str, doc: str, starts: list[int], word_ids: list[int | None]) -> str:
        """The query cut at the start of a word, keeping more tokens than max_length and than the document has."""
        doc_tokens = len(self.tokenizer(doc, add_special_tokens=False)["input_ids"])
        needed = max(self.max_length, doc_tokens) + 1
        k = needed + self._CUT_MARGIN
        if k >= len(starts):
            return query
        while k > needed and word_ids[k] is not None and word_ids[k - 1] == word_ids[k]:
            k -= 1  # back to the first token of the word, so no word is split
        return query if k <= needed else query[: starts[k]]

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        return self.score_in_turns(pairs, no_turns)

    def score_in_turns(self, pairs: Sequence[Pair], turn: Turn) -> list[float]:
        """`score`, one tokenized chunk or one forward pass per turn (see Scorer). The tokenizer is used only inside
        a turn too: a fast tokenizer called from two threads at once can fail ("Already borrowed")."""
        import numpy as np

        if not pairs:
            return []
        rows: list[dict[str, list[int]]] = []
        for start in range(0, len(pairs), self.batch_size):
            with turn():
                rows.extend(self.encode(pairs[start : start + self.batch_size]))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        scores = [0.0] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = len(rows[chunk[0]]["input_ids"])
            batch: dict[str, Any] = {}
            for key in rows[chunk[0]]:
                array = np.full((len(chunk), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
                for r, i in enumerate(chunk):
                    ids = rows[i][key]
                    array[r, : len(ids)] = ids
                batch[key] = array
            with turn():
                logits = np.asarray(self._forward(batch), dtype=np.float64)
            if self.num_labels == 1:
                probs = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            else:
                probs = 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))  # softmax P(label 1) of two logits
            for i, p in zip(chunk, probs.tolist(), strict=True):
                scores[i] = float(p)
        return scores

    def _forward(self, batch: dict[str, Any]) -> Any:
        """Logits (batch, labels) as a numpy array for one padded batch of int64 numpy arrays."""
        if self._onnx is not None:
            return self._onnx(batch)
        torch = self._torch
        with torch.inference_mode(), _autocast(torch, self.quantize):
            tensors = {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}
            return self.model(**tensors).logits.float().cpu().numpy()


def _quantize_int8(torch: Any, model: Any) -> Any:
    import warnings

    # torch marks eager dynamic quantization deprecated (in favour of torchao) but still ships it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.ao.quantization.quantize_dynamic(model, _encoder_linears(torch, model), dtype=torch.qint8)
        except (AttributeError, RuntimeError) as exc:
            raise ScorerError(f"int8 dynamic quantization is not available in this torch: {exc}") from exc


def _encoder_linears(torch: Any, model: Any) -> set[str]:
    """Names of the encoder's Linear layers. The rest (pooler, classification head) is tiny, so there is no speed
    to gain there, and rounding it perturbs every score directly."""
    prefix = model.base_model_prefix + ".encoder."
    return {name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.startswith(prefix)}


def _keep_head_fp32(torch: Any, model: Any) -> None:
    """Make every Linear outside the encoder (pooler, head) run in fp32 even under bf16 autocast."""
    encoder = _encoder_linears(torch, model)

    class Fp32(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            with torch.autocast("cpu", enabled=False):
                return self.inner(x.float())

    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and name not in encoder:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, Fp32(module))


def _rows(enc: Any, n: int) -> list[dict[str, list[int]]]:
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{k: list(enc[k][i]) for k in keys} for i in range(n)]


def _autocast(torch: Any, quantize: str) -> Any:
    if quantize == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_scorer(
    model: str | os.PathLike[str] | None,
    *,
    max_length: int = 512,
    batch_size: int = 32,
    quantize: str = "none",
    threads: int | None = None,
    backend: str = "auto",
) -> Scorer:
    """A CrossEncoderScorer for the model directory `model`, or the LexicalScorer when `model` is None."""
    if model is None:
        from .lexical import LexicalScorer

        return LexicalScorer()
    model_dir = Path(model)
    if not (model_dir / "config.json").is_file():
        raise ScorerError(f"{model_dir}: no config.json; expected a directory saved with save_pretrained()")
    needs_torch = resolve_backend(model_dir, backend) == "torch" or onnx_file(model_dir) is None
    try:
        import transformers  # noqa: F401 - the tokenizer
        if needs_torch:
            import torch  # noqa: F401
    except ImportError as exc:
        what = "torch and transformers" if needs_torch else "transformers (for the tokenizer)"
        raise ScorerError(
            f"--model needs {what} ({exc}); install the extra: pip install 'os-rerank[serve]'"
            + (" and torch, or put an ONNX export (model.onnx) in the directory" if needs_torch else "")
            + ", or leave --model out to use the lexical scorer"
        ) from exc
    return CrossEncoderScorer(model, max_length=max_length, batch_size=batch_size, quantize=quantize, threads=threads,
                              backend=backend)
