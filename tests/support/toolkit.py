"""Running our SageMaker handler inside the real SageMaker Hugging Face inference toolkit (scripts/toolkit-venv)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLKIT_PYTHON = Path(os.environ.get("OS_RERANK_TOOLKIT_PYTHON") or REPO / ".toolkit-venv" / "bin" / "python")


def run_toolkit(model_dir: Path, requests: list[dict[str, Any]], env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """tests/fakes/mms_frontend.py under the toolkit's Python, as the DLC's MMS worker would run the handler."""
    if not TOOLKIT_PYTHON.is_file():
        pytest.skip(f"no SageMaker HF inference toolkit Python at {TOOLKIT_PYTHON}: run scripts/toolkit-venv "
                    "(or set OS_RERANK_TOOLKIT_PYTHON)")
    requests_file = tmp / "requests.json"
    requests_file.write_text(json.dumps(requests), encoding="utf-8")
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "HF_HUB_OFFLINE": "1",
               "SAGEMAKER_PROGRAM": "inference.py", "MMS_DECODE_INPUT_REQUEST": "false", **env}
    done = subprocess.run([str(TOOLKIT_PYTHON), "-I", str(REPO / "tests" / "fakes" / "mms_frontend.py"),
                           str(model_dir), str(requests_file)], capture_output=True, text=True, cwd=tmp,
                          env=environ, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result
