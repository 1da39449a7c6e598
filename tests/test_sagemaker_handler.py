"""os-rerank's SageMaker handler (code/inference.py) and its model.tar.gz, on tiny ONNX cross-encoders (no torch).

Three layers, each real at what it claims:

* in-process: `model_fn` / `input_fn` / `predict_fn` / `output_fn` answer byte for byte what `os-rerank serve`
  answers over HTTP on the same model, for every contract, and refuse what serve refuses with the same message;
* the archive: deterministic bytes, the layout the Hugging Face DLC expects, and a `code/` folder that imports
  on its own (no os-rerank installed);
* inside the real SageMaker Hugging Face inference toolkit 2.6.0 and the real MMS Python worker, under the DLC's
  transformers 4.37.0 (tests/fakes/mms_frontend.py says exactly what runs for real and what stands in), on the
  archive unpacked as SageMaker unpacks it into /opt/ml/model: each contract's request, compared with serve;
* and once over HTTP through the whole model server the DLC runs: MMS's Java frontend started by
  `multi-model-server` with the configuration sagemaker-inference generates, its Python workers, the toolkit and
  the handler, answering `GET /ping` and `POST /invocations`.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from os_rerank.aws.archive import CODE_FILES, ModelDirError, build_model_archive, model_files
from os_rerank.contracts import CONTRACT_NAMES, CONTRACTS
from os_rerank.server import inference
from os_rerank.server.app import EndpointServer
from os_rerank.server.scorers import load_scorer

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'os-rerank[serve]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'os-rerank[onnx]')")
pytest.importorskip("transformers", reason="transformers is not installed (pip install 'os-rerank[serve]')")

from tests.fakes.tiny_onnx import CORPUS  # noqa: E402
from tests.support.toolkit import TOOLKIT_PYTHON, run_toolkit  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CASE = json.loads((REPO / "tests" / "data" / "contracts" / "case.json").read_text(encoding="utf-8"))
QUERY = CORPUS[3]
DOCS = [*CORPUS, *CASE["docs"]]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from tests.fakes.tiny_onnx import build

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loading must never reach for the hub
    root = tmp_path_factory.mktemp("tiny-onnx-handler")
    return {n: build(root / f"labels-{n}", n) for n in (1, 2)}


def requests_for(contract: str) -> list[bytes]:
    """The contract's request for the golden case (Korean, Hindi, quotes, backslashes, control characters) and for
    the tiny corpus, and one with the query alone longer than max_length."""
    build = CONTRACTS[contract].build_request
    return [json.dumps(build(CASE["query"], CASE["docs"]), ensure_ascii=False).encode(),
            json.dumps(build(QUERY, DOCS)).encode(),
            json.dumps(build("capital of the united states " * 40, DOCS[:3])).encode()]


def serve_answers(model: Path, contract: str, bodies: list[bytes], *,
                  content_type: str = "application/json") -> list[tuple[int, str]]:
    """(status, body or error message) from `os-rerank serve`'s endpoint for each body."""
    out = []
    with EndpointServer(CONTRACTS[contract], load_scorer(model)) as server:
        for body in bodies:
            request = Request(f"{server.url}/invocations", data=body, headers={"Content-Type": content_type})
            try:
                with urlopen(request, timeout=30) as reply:
                    out.append((reply.status, reply.read().decode("utf-8")))
            except HTTPError as exc:
                out.append((exc.code, json.loads(exc.read())["message"]))
    return out


def handler_answer(handler: inference.Handler, body: bytes, content_type: str = "application/json",
                   accept: str | None = None) -> str:
    return inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), handler), accept)


# --- in-process ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [1, 2])
@pytest.mark.parametrize("contract", CONTRACT_NAMES)
def test_the_handler_answers_what_serve_answers(models: dict[int, Path], contract: str, labels: int) -> None:
    handler = inference.load_handler(models[labels], {inference.CONTRACT_ENV: contract})
    bodies = requests_for(contract)
    got = [handler_answer(handler, body) for body in bodies]
    assert [(200, text) for text in got] == serve_answers(models[labels], contract, bodies)
    # every document scored, input order restorable, whatever the contract's shape
    for body, text in zip(bodies, got, strict=True):
        n = len(CONTRACTS[contract].parse_request(json.loads(body)).pairs)
        assert len(CONTRACTS[contract].parse_response(json.loads(text), n)) == n


def test_the_handler_refuses_what_serve_refuses_with_its_words(models: dict[int, Path]) -> None:
    contract = "pairs-scores"
    handler = inference.load_handler(models[1], {inference.CONTRACT_ENV: contract})
    bad = [b"{nope", b"", b'{"pairs": [["q"]]}', b'{"pairs": [], "extra": 1}', b"[" * 3000, b"\xff{}"]
    for body, (status, message) in zip(bad, serve_answers(models[1], contract, bad), strict=True):
        assert status == 400
        with pytest.raises(inference.HandlerError) as info:
            handler_answer(handler, body)
        assert str(info.value) == message
    with pytest.raises(inference.HandlerError, match="unsupported content type 'text/csv'"):
        inference.input_fn(b"{}", "text/csv")
    with pytest.raises(inference.HandlerError, match="unsupported charset 'latin-1'"):
        inference.input_fn(b"{}", "application/json; charset=latin-1")
    with pytest.raises(inference.HandlerError, match="cannot answer in 'text/csv'"):
        inference.output_fn({"scores": [1.0]}, "text/csv")
    assert inference.output_fn({"scores": [1.0]}, "*/*") == '{"scores": [1.0]}'


def test_model_fn_says_what_is_missing(models: dict[int, Path], tmp_path: Path) -> None:
    with pytest.raises(inference.HandlerError, match="OS_RERANK_CONTRACT is not set; set it on the SageMaker model"):
        inference.load_handler(models[1], {})
    with pytest.raises(inference.HandlerError, match="OS_RERANK_CONTRACT: unknown contract 'tei'; known: hf-text"):
        inference.load_handler(models[1], {inference.CONTRACT_ENV: "tei"})
    with pytest.raises(inference.HandlerError, match="no config.json; package a model directory into model.tar.gz "
                                                     "or set HF_MODEL_ID"):
        inference.load_handler(tmp_path, {inference.CONTRACT_ENV: "tei-rerank"})
    with pytest.raises(inference.HandlerError, match="OS_RERANK_MAX_LENGTH='4': expected an integer of at least 8"):
        inference.load_handler(models[1], {inference.CONTRACT_ENV: "tei-rerank", inference.MAX_LENGTH_ENV: "4"})
    handler = inference.load_handler(models[1], {inference.CONTRACT_ENV: "tei-rerank",
                                                 inference.MAX_DOCUMENTS_ENV: "2", inference.MAX_LENGTH_ENV: "16"})
    assert handler.scorer.max_length == 16 and handler.scorer.backend == "onnx"
    with pytest.raises(inference.HandlerError, match=r"request has 3 documents; this endpoint scores at most 2 per "
                                                     r"request \(OS_RERANK_MAX_DOCUMENTS\)"):
        handler_answer(handler, json.dumps(CONTRACTS["tei-rerank"].build_request("q", ["a", "b", "c"])).encode())


def test_the_functions_fit_the_toolkit_s_argument_rules() -> None:
    """The toolkit passes its context as an extra argument to a function with one more parameter than these."""
    arity = {name: len(inspect.signature(getattr(inference, name)).parameters)
             for name in ("model_fn", "input_fn", "predict_fn", "output_fn")}
    assert arity == {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2}
    assert not hasattr(inference, "transform_fn")  # the toolkit refuses transform_fn next to the other three


# --- the archive -----------------------------------------------------------------------------------------------------


def test_the_archive_is_deterministic_and_laid_out_for_the_dlc(models: dict[int, Path], tmp_path: Path) -> None:
    model = models[1]
    first = build_model_archive(model, tmp_path / "a.tar.gz")
    os.utime(model / "config.json", (1_700_000_000, 1_700_000_000))  # a new mtime must not change the bytes
    second = build_model_archive(model, tmp_path / "b.tar.gz")
    assert first.sha256 == second.sha256 and first.path.read_bytes() == second.path.read_bytes()
    assert first.members == tuple(sorted(first.members))
    assert {name for name, _ in CODE_FILES} <= set(first.members)
    assert {"config.json", "model.onnx", "tokenizer.json", "vocab.txt"} <= set(first.members)
    with tarfile.open(first.path) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == list(first.members)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode, i.type) for i in infos} == {
        (0, 0, 0, "", "", 0o644, tarfile.REGTYPE)}
    assert first.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
    code_only = build_model_archive(None, tmp_path / "c.tar.gz")
    assert code_only.members == tuple(sorted(name for name, _ in CODE_FILES))
    assert code_only.sha256 != first.sha256
    (model / "config.json").write_text((model / "config.json").read_text() + " ")
    try:
        assert build_model_archive(model, tmp_path / "d.tar.gz").sha256 != first.sha256
    finally:
        (model / "config.json").write_text((model / "config.json").read_text()[:-1])


def test_model_files_skip_dot_entries_and_code_and_follow_links(models: dict[int, Path], tmp_path: Path) -> None:
    import shutil

    model = shutil.copytree(models[1], tmp_path / "model")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref")
    (model / ".gitattributes").write_text("*")
    (model / "code").mkdir()
    (model / "code" / "inference.py").write_text("a custom handler")
    (model / "onnx").mkdir()
    blob = tmp_path / "blob"
    blob.write_bytes(b"weights")
    (model / "onnx" / "extra.bin").symlink_to(blob)  # a Hugging Face cache snapshot links to its blobs
    (model / "dangling").symlink_to(tmp_path / "missing")
    names = [name for name, _ in model_files(model)]
    assert names == sorted(names) and "onnx/extra.bin" in names
    assert not any(n.startswith((".", "code/")) or n == "dangling" for n in names)
    archive = build_model_archive(model, tmp_path / "m.tar.gz")
    with tarfile.open(archive.path) as tar:
        extra = tar.extractfile("onnx/extra.bin")
        assert extra is not None and extra.read() == b"weights"
        handler = tar.extractfile("code/inference.py")
        assert handler is not None and handler.read() == Path(inference.__file__).read_bytes()
    with pytest.raises(ModelDirError, match="no config.json; expected a directory saved with save_pretrained"):
        model_files(tmp_path)
    with pytest.raises(ModelDirError, match="not a directory"):
        model_files(tmp_path / "nope")


def test_the_code_folder_imports_on_its_own(tmp_path: Path) -> None:
    """code/ holds everything inference.py imports: run it with no os-rerank installed on the path."""
    archive = build_model_archive(None, tmp_path / "model.tar.gz")
    with tarfile.open(archive.path) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    code = tmp_path / "model" / "code"
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import importlib.abc\n"
             "class Refuse(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path, target=None):\n"
             "        if name.split('.')[0] in ('boto3', 'botocore', 'opensearchpy', 'pydantic', 'yaml', 'jinja2'):\n"
             "            raise ImportError('not in the container: ' + name)\n"
             "sys.meta_path.insert(0, Refuse())\n"
             "import inference, os_rerank\n"
             "print(os_rerank.__file__); print(sorted(m for m in sys.modules if m.startswith('os_rerank')))")
    done = subprocess.run([sys.executable, "-I", "-c", probe, str(code)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    where, modules = done.stdout.splitlines()
    assert where == str(code / "os_rerank" / "__init__.py")
    assert modules == ("['os_rerank', 'os_rerank.contracts', 'os_rerank.embedding_contracts', 'os_rerank.server', "
                       "'os_rerank.server.embedders', 'os_rerank.server.scorers']")


# --- inside the real SageMaker Hugging Face inference toolkit -----------------------------------------------


@pytest.fixture(scope="module")
def unpacked(models: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model.tar.gz of the one-logit model, unpacked as SageMaker unpacks it into /opt/ml/model."""
    root = tmp_path_factory.mktemp("opt-ml")
    archive = build_model_archive(models[1], root / "model.tar.gz")
    with tarfile.open(archive.path) as tar:
        tar.extractall(root / "model", filter="data")
    return root / "model"


@pytest.mark.parametrize("contract", CONTRACT_NAMES)
def test_inside_the_toolkit_every_contract_answers_as_serve_does(models: dict[int, Path], unpacked: Path,
                                                                  contract: str, tmp_path: Path) -> None:
    bodies = requests_for(contract)
    requests: list[dict[str, Any]] = [{"body": b.decode("utf-8")} for b in bodies]
    requests += [{"body": "{nope"}, {"body": "{}", "content_type": "text/csv"},
                 {"body": bodies[1].decode("utf-8"), "accept": "*/*"}]
    result = run_toolkit(unpacked, requests, {"OS_RERANK_CONTRACT": contract}, tmp_path)
    assert result["load"][0] == 200
    assert result["transformers"] == "4.37.0"  # the DLC's (huggingface-pytorch-inference:2.1.0-transformers4.37.0)
    assert result["user_module"] == str(unpacked / "code" / "inference.py")
    assert result["os_rerank_file"] == str(unpacked / "code" / "os_rerank" / "__init__.py")  # the vendored copy
    answers = result["answers"]
    expected = serve_answers(models[1], contract, bodies)
    # Same shape, same order, scores equal to the last bits numpy's exp may differ in (1.26 there, 2.x here).
    assert [(a["status"], json.loads(a["body"])) for a in answers[:3]] == [(s, approx_json(b)) for s, b in expected]
    assert {a["content_type"] for a in answers[:3]} == {"application/json"}
    bad_json = serve_answers(models[1], contract, [b"{nope"])[0][1]
    assert (answers[3]["status"], answers[3]["message"]) == (400, bad_json)
    assert (answers[4]["status"], answers[4]["message"]) == (
        400, "unsupported content type 'text/csv'; this endpoint accepts application/json")
    assert (answers[5]["status"], json.loads(answers[5]["body"])) == (200, approx_json(expected[1][1]))


def approx_json(text: str) -> Any:
    """The JSON value with every float wrapped in pytest.approx (1e-12 relative)."""
    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return pytest.approx(value, rel=1e-12, abs=1e-15)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(json.loads(text))


def test_inside_the_toolkit_a_missing_contract_is_a_400_naming_it(unpacked: Path, tmp_path: Path) -> None:
    body = json.dumps(CONTRACTS["pairs-scores"].build_request("q", ["d"]))
    result = run_toolkit(unpacked, [{"body": body}], {}, tmp_path)
    # MMS logs a failed initialize and loads anyway; the toolkit retries it on the request and answers 400
    assert result["answers"][0]["status"] == 400
    assert result["answers"][0]["message"].startswith("OS_RERANK_CONTRACT is not set; set it on the SageMaker model")


MMS_PORT = 18188 + 10 * int(os.environ.get("OS_RERANK_TEST_SLOT", "0") or 0)  # in this slot's endpoint port block
# The one stand-in inside MMS's workers (a separate process): what a CPU DLC's _is_gpu_available answers; without
# torch or TensorFlow installed it raises instead.
SITECUSTOMIZE = """from sagemaker_huggingface_inference_toolkit import transformers_utils
transformers_utils._is_gpu_available = lambda: False
"""
MMS_CONFIG = """import sys
from sagemaker_inference import environment
from sagemaker_inference.model_server import _generate_mms_config_properties
from sagemaker_huggingface_inference_toolkit import handler_service
sys.stdout.write(_generate_mms_config_properties(environment.Environment(), handler_service.__name__))
"""


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urlopen(request, timeout=60) as reply:
            return reply.status, reply.read().decode("utf-8")
    except HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def test_inside_the_real_model_server_over_http(models: dict[int, Path], unpacked: Path, tmp_path: Path) -> None:
    mms = TOOLKIT_PYTHON.parent / "multi-model-server"
    if not mms.is_file():
        pytest.skip(f"no multi-model-server next to {TOOLKIT_PYTHON}: run scripts/toolkit-venv")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: MMS's frontend is a Java server")
    contract = "query-documents-topk"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    (tmp_path / "tmp").mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "TMPDIR": str(tmp_path / "tmp"), "TEMP": str(tmp_path / "tmp"),  # MMS's pid file and worker sockets
           "SAGEMAKER_BIND_TO_PORT": str(MMS_PORT), "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
           "SAGEMAKER_PROGRAM": "inference.py", "OS_RERANK_CONTRACT": contract}
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    generated = subprocess.run([str(TOOLKIT_PYTHON), "-I", "-c", MMS_CONFIG], capture_output=True, text=True,
                               env=env, timeout=120, check=True)
    config = tmp_path / "mms.properties"
    config.write_text(generated.stdout, encoding="utf-8")
    assert "default_service_handler=sagemaker_huggingface_inference_toolkit.handler_service" in generated.stdout
    assert "decode_input_request=false" in generated.stdout
    log = (tmp_path / "mms.log").open("wb")
    server = subprocess.Popen([str(mms), "--start", "--foreground", "--model-store", "/", "--mms-config",
                               str(config), "--models", f"model={unpacked}"],  # as the toolkit starts it
                              env={**env, "PYTHONPATH": str(tmp_path / "site")}, stdout=log,
                              stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    url = f"http://127.0.0.1:{MMS_PORT}"
    bodies = requests_for(contract)
    try:
        deadline = time.monotonic() + 180
        status, text = 0, ""
        while time.monotonic() < deadline:  # until a worker has loaded the model (503 before)
            try:
                status, text = post(f"{url}/invocations", bodies[1])
            except OSError:
                status = 0
            if status not in (0, 503, 404) or server.poll() is not None:
                break
            time.sleep(1)
        assert status == 200, (status, text, (tmp_path / "mms.log").read_text(errors="replace")[-3000:])
        with urlopen(f"{url}/ping", timeout=10) as ping:
            assert ping.status == 200
        expected = serve_answers(models[1], contract, bodies)
        got = [post(f"{url}/invocations", body) for body in bodies]
        assert [(s, json.loads(t)) for s, t in got] == [(s, approx_json(t)) for s, t in expected]
        bad_json = serve_answers(models[1], contract, [b"{nope"])[0][1]
        status, text = post(f"{url}/invocations", b"{nope")
        assert (status, json.loads(text)["message"]) == (400, bad_json)
        status, text = post(f"{url}/invocations", b"a,b", "text/csv")
        assert (status, json.loads(text)["message"]) == (
            400, "unsupported content type 'text/csv'; this endpoint accepts application/json")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server, its Java frontend and its workers: our session only
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
