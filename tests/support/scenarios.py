"""Scenario steps shared by the search, eval and gate scenarios: set up through the CLI, golden files, eval args."""

from __future__ import annotations

import os
from pathlib import Path

from tests.backends import Backend

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"


def set_up(backend: Backend, **sections: dict) -> str:
    config = str(backend.config(**sections))
    code, _, err = backend.run("setup", "--config", config)
    assert code == 0, err
    return config


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OS_RERANK_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


ROOT = Path(__file__).resolve().parents[2]


EVAL_ARGS = ("--queries", "data/eval/queries.jsonl", "--qrels", "data/eval/qrels.txt",
             "--corpus", "data/eval/corpus.jsonl")
