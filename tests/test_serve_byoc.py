"""The SageMaker bring-your-own-container image, without Docker: Dockerfile.endpoint is read for what SageMaker
relies on, and the command line it runs is started the way SageMaker starts a container (`IMAGE serve`, the port
from SAGEMAKER_BIND_TO_PORT, no keys), on a model in the Hugging Face hub layout (onnx/model.onnx), with no torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile.endpoint").read_text(encoding="utf-8")


def test_the_image_runs_serve_on_8080_with_the_model_at_opt_ml_model() -> None:
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["os-rerank", "serve", "--host", "0.0.0.0"]  # SageMaker appends `serve`; port 8080 by default
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)
    assert "/opt/ml/model" in DOCKERFILE


def test_the_image_installs_onnx_runtime_and_torch_only_on_request() -> None:
    installs = re.findall(r"pip install [^\n&]*", DOCKERFILE)
    assert 'pip install ".[serve]" ' in [i.rstrip() + " " for i in installs]
    torch_lines = [line for line in DOCKERFILE.splitlines() if "torch" in line and "pip install" in line]
    assert torch_lines and all('WITH_TORCH" = "1"' in line and "whl/cpu" in line for line in torch_lines)
    assert "'onnx/model.onnx'" in DOCKERFILE  # the hub layout's export is downloaded with a baked-in model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_started_as_sagemaker_starts_it_the_container_answers_ping_and_invocations(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
    from tests.fakes.tiny_onnx import build

    model = build(tmp_path / "model", 1)
    (model / "onnx").mkdir()
    shutil.move(model / "model.onnx", model / "onnx" / "model.onnx")  # as snapshot_download lays a hub model out
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_RERANK_SERVE_")}
    env.update({"SAGEMAKER_BIND_TO_PORT": str(port), "OS_RERANK_SERVE_MODEL": str(model), "HF_HUB_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, "-m", "os_rerank.cli", "serve", "--host", "127.0.0.1", "serve"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(6)]
        assert banner[0].startswith("scorer    cross-encoder model (sigmoid of 1 logit, max 64 tokens, onnxruntime)")
        assert banner[3].startswith("sigv4     NOT verified")
        assert banner[5] == f"listening on http://127.0.0.1:{port}\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=10) as reply:
            assert reply.status == 200 and json.loads(reply.read())["status"] == "Healthy"
        body = json.dumps({"inputs": [{"text": "수도", "text_pair": "서울은 수도"}, {"text": "q", "text_pair": "d"}]})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body.encode(), method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "X-Amzn-SageMaker-Custom-Attributes": "trace=1"})  # headers SageMaker passes through
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.loads(reply.read())
        assert [set(item) for item in answer] == [{"label", "score"}] * 2
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        proc.communicate(timeout=30)
    assert proc.returncode == 0
