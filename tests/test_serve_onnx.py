"""The ONNX Runtime backend and bf16 head handling of CrossEncoderScorer, on the tiny random BERTs (no network)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from os_rerank.server.scorers import CrossEncoderScorer, ScorerError, load_scorer
from tests.support.cross_encoder import PAIRS, build_tiny_cross_encoder, reference_scores

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

pytest.importorskip("torch", reason="torch is not installed (the optional torch backend: pip install "
                    "'os-rerank[torch]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime onnx)")
pytest.importorskip("onnx", reason="onnx is not installed (pip install onnxruntime onnx)")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    os.environ["HF_HUB_OFFLINE"] = "1"  # loading must never reach for the hub
    root = tmp_path_factory.mktemp("tiny-onnx-cross-encoders")
    return {n: build_tiny_cross_encoder(root / f"labels-{n}", n) for n in (1, 2)}


@pytest.mark.parametrize("labels", [1, 2])
def test_onnx_backend_matches_unbatched_torch_reference(tiny_models: dict[int, Path], labels: int) -> None:
    scorer = load_scorer(tiny_models[labels], batch_size=4, backend="onnx")
    assert scorer.score(PAIRS) == pytest.approx(reference_scores(tiny_models[labels], PAIRS, 128), abs=1e-4)
    assert scorer.name.endswith("max 128 tokens, onnxruntime)")


def test_onnx_int8_scores_every_pair_in_order(tiny_models: dict[int, Path]) -> None:
    scorer = load_scorer(tiny_models[1], batch_size=3, backend="onnx", quantize="int8")
    scores = scorer.score(PAIRS)
    assert len(scores) == len(PAIRS) and all(0.0 < s < 1.0 for s in scores)
    assert scorer.score(PAIRS[::-1]) == pytest.approx(scores[::-1], abs=1e-6)
    assert scorer.name.endswith("onnxruntime, int8)")


def test_a_model_onnx_in_the_directory_is_used_without_torch_model(tiny_models: dict[int, Path],
                                                                     tmp_path: Path) -> None:
    from os_rerank.server.onnx_scorer import export

    exported = load_scorer(tiny_models[1], backend="onnx")
    assert isinstance(exported, CrossEncoderScorer) and exported._onnx.exported
    model_dir = shutil.copytree(tiny_models[1], tmp_path / "with-onnx")
    export(exported.model, ["input_ids", "token_type_ids", "attention_mask"], model_dir / "model.onnx")
    scorer = load_scorer(model_dir, backend="onnx")
    assert isinstance(scorer, CrossEncoderScorer) and scorer.model is None and not scorer._onnx.exported
    assert scorer.score(PAIRS) == pytest.approx(exported.score(PAIRS), abs=1e-6)


def test_onnx_refuses_bf16_and_unknown_backends(tiny_models: dict[int, Path]) -> None:
    with pytest.raises(ScorerError, match="quantize bf16 needs --backend torch"):
        load_scorer(tiny_models[1], backend="onnx", quantize="bf16")
    with pytest.raises(ScorerError, match="backend: expected one of torch, onnx, got 'tf'"):
        load_scorer(tiny_models[1], backend="tf")


def test_bf16_keeps_the_head_in_fp32(tiny_models: dict[int, Path]) -> None:
    import torch

    scorer = load_scorer(tiny_models[1], quantize="bf16")
    assert isinstance(scorer, CrossEncoderScorer)
    assert type(scorer.model.classifier).__name__ == "Fp32"
    assert isinstance(scorer.model.bert.encoder.layer[0].intermediate.dense, torch.nn.Linear)
    assert scorer.score(PAIRS) == pytest.approx(reference_scores(tiny_models[1], PAIRS, 128), abs=0.05)
