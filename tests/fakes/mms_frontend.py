"""Drive the real MMS Python worker + the real SageMaker Hugging Face inference toolkit the way the DLC does.

Run by tests/test_sagemaker_handler.py under a Python that has `sagemaker-huggingface-inference-toolkit==2.6.0`,
`sagemaker-inference`, `multi-model-server` and the DLC's transformers (scripts/toolkit-venv builds it), never
under the test process's own Python (the toolkit needs transformers 4.x; our venv has 5.x):

    python mms_frontend.py MODEL_DIR REQUESTS.json  ->  one JSON object on stdout

What runs for real: MMS's worker (`MXNetModelServiceWorker.load_model`, `ModelLoaderFactory`, `Service.predict`)
decoding the frontend's binary OTF messages (`retrieve_msg`) and encoding its answers (`create_predict_response`),
the toolkit's `HuggingFaceHandlerService` loading the user module named by SAGEMAKER_PROGRAM from MODEL_DIR/code
(`validate_and_initialize_user_module`, the `function_extra_arg` signature checks, `handle`, `transform_fn`, its
UTF-8 decoding and its error mapping), and our `code/inference.py` with the os_rerank files vendored next to it.

What stands in: this file plays MMS's Java frontend (it writes the OTF load and predict messages the frontend
writes for `POST /invocations`, with `decode_input_request=false` as sagemaker-inference's default-mms.properties
sets, and reads the answers), in-process instead of over the worker's Unix socket and fork; and
`handler_service._is_gpu_available` returns False, which is what it returns in a CPU DLC: without torch or
TensorFlow installed it raises instead (and CI has no torch).
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import tempfile
from typing import Any

HANDLER = "sagemaker_huggingface_inference_toolkit.handler_service"  # sagemaker-inference's default_service_handler


class _Conn:
    """What the worker reads from: `recv(n)` over the bytes the frontend sent."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def recv(self, n: int) -> bytes:
        return self.stream.read(n)


def _blob(data: bytes) -> bytes:
    return struct.pack("!i", len(data)) + data


def load_message(model_dir: str) -> bytes:
    """The frontend's load command (`_retrieve_load_msg`'s frame)."""
    return (b"L" + _blob(b"model") + _blob(model_dir.encode()) + struct.pack("!i", 1) + _blob(HANDLER.encode())
            + struct.pack("!i", -1) + _blob(b"io"))


def predict_message(request_id: str, body: bytes, content_type: str, accept: str | None) -> bytes:
    """The frontend's inference command for one POST /invocations (`_retrieve_inference_msg`'s frame)."""
    headers = [("Content-Type", content_type)] + ([("Accept", accept)] if accept else [])
    msg = b"I" + _blob(request_id.encode())
    for name, value in headers:
        msg += _blob(name.encode()) + _blob(value.encode())
    msg += struct.pack("!i", -1)
    msg += _blob(b"body") + _blob(content_type.encode()) + _blob(body)
    msg += struct.pack("!i", -1)
    return msg + struct.pack("!i", -1)


def read_predict_response(data: bytes) -> dict[str, Any]:
    """`create_predict_response`'s frame, for the one request sent."""
    stream = io.BytesIO(data)

    def integer() -> int:
        return int(struct.unpack("!i", stream.read(4))[0])

    def blob() -> bytes:
        return stream.read(integer())

    code = integer()
    message = blob().decode()
    blob()  # request id
    content_type = blob().decode()
    status = integer()
    blob()  # reason phrase
    for _ in range(integer()):  # response headers
        blob()
        blob()
    body = blob()
    return {"code": code, "message": message, "status": status, "content_type": content_type,
            "body": body.decode("utf-8")}


def main(model_dir: str, requests_file: str) -> int:
    from mms.model_service_worker import MXNetModelServiceWorker
    from mms.protocol.otf_message_handler import retrieve_msg
    from sagemaker_huggingface_inference_toolkit import handler_service

    handler_service._is_gpu_available = lambda: False  # what a CPU DLC answers; raises here without torch

    with open(requests_file, encoding="utf-8") as handle:
        requests = json.load(handle)
    with tempfile.TemporaryDirectory() as tmp:
        worker = MXNetModelServiceWorker("unix", os.path.join(tmp, "sock"), tmp_dir=tmp)
        cmd, msg = retrieve_msg(_Conn(load_message(model_dir)))
        assert cmd == b"L"
        loaded, code = worker.load_model(msg)
        answers = []
        for k, request in enumerate(requests):
            body = request["body"].encode("utf-8") if "body" in request else bytes.fromhex(request["body_hex"])
            cmd, batch = retrieve_msg(_Conn(predict_message(f"req-{k}", body, request.get("content_type",
                                                                                          "application/json"),
                                                            request.get("accept"))))
            assert cmd == b"I"
            answers.append(read_predict_response(bytes(worker.service.predict(batch))))
    import transformers

    os_rerank = sys.modules.get("os_rerank")
    out = {"load": [code, loaded], "answers": answers, "transformers": transformers.__version__,
           "os_rerank_file": getattr(os_rerank, "__file__", None),
           "user_module": getattr(sys.modules.get("inference"), "__file__", None)}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
