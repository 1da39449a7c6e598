"""The Python side of the ML Commons glue: compile MLCommonsGlue.java once, start one JVM, talk to it over a pipe.

One line of base64(UTF-8 JSON) per request and per reply, so test data never enters Java source and no byte of it
is lost to a console encoding. Scripts travel as text and are compiled inside the JVM on first use (cached by hash).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
from pathlib import Path
from typing import Any

JAVA_LIB = Path("/usr/share/java")
JARS = ("gson.jar", "commons-text.jar", "commons-lang3.jar")
SOURCE = Path(__file__).with_name("MLCommonsGlue.java")
BUILD_DIR = Path(__file__).resolve().parent.parent / ".painless-build"

Version = tuple[int, int, int]


class GlueUnavailable(unittest.SkipTest):
    """No JDK or no Gson / commons-text jar here: the Painless layer cannot run (pytest reports it as a skip)."""


class ScriptFailure(Exception):
    """A script or ML Commons step failed; `.message` is the ML Commons-style error text, `.kind` the layer."""

    def __init__(self, message: str, kind: str = "script") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def _classpath(extra: Path | None = None) -> str:
    parts = [str(JAVA_LIB / jar) for jar in JARS]
    if extra is not None:
        parts.insert(0, str(extra))
    return os.pathsep.join(parts)


def _compile_glue(javac: str) -> Path:
    """The directory holding the compiled glue; compiled once per source version, atomically (tests run in parallel)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = BUILD_DIR / f"classes-{digest}"
    if (target / "MLCommonsGlue.class").exists():
        return target
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="classes-", dir=BUILD_DIR))
    done = subprocess.run(
        [javac, "-nowarn", "-encoding", "UTF-8", "-cp", _classpath(), "-d", str(staging), str(SOURCE)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"javac failed on {SOURCE.name}:\n{done.stderr}")
    try:
        staging.rename(target)
    except OSError:  # another session won the race; its classes are the same
        shutil.rmtree(staging, ignore_errors=True)
    return target


def start_glue() -> MLCommonsGlue:
    """Compile the glue (if needed) and start its JVM; GlueUnavailable with a one-line reason when it cannot run."""
    javac = shutil.which("javac")
    java = shutil.which("java")
    if javac is None or java is None:
        raise GlueUnavailable("no JDK: javac not found")
    for jar in JARS:
        if not (JAVA_LIB / jar).exists():
            raise GlueUnavailable(f"missing {JAVA_LIB / jar}")
    classes = _compile_glue(javac)
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- the JVM's stderr for its whole life; close() closes it
    process = subprocess.Popen(
        [java, "-Xss8m", "-XX:+UseSerialGC", "-cp", _classpath(classes), "MLCommonsGlue"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    glue = MLCommonsGlue(process, log)
    glue._call({"op": "ping"})
    return glue


class MLCommonsGlue:
    """ML Commons' handling of connector scripts (2.12+), run in one JVM. Thread-safe: one request at a time."""

    def __init__(self, process: subprocess.Popen[bytes], log: Any) -> None:
        self._process = process
        self._log = log
        self._lock = threading.Lock()

    def preprocess_payload(
        self,
        pre_script: str,
        request_body: str,
        connector_parameters: dict[str, str],
        query: str | None,
        docs: list[str],
        *,
        version: Version,
        escape_order: str = "released",
    ) -> str:
        """The payload text the endpoint receives: input escaping, script, parameter handling, substitution, checks.

        `query` None is a text-docs input (an embedding model's: only `text_docs`), else a text-similarity one.
        `escape_order` "noescape-first" models the upstream proposal to consult no_escape_params before the
        is-it-JSON shortcut (MLCommonsGlue.escapeRemoteInferenceInputData).
        """
        result = self._call({
            "op": "preprocess_payload",
            "script": pre_script,
            "request_body": request_body,
            "connector_parameters": connector_parameters,
            "query": query,
            "docs": list(docs),
            "version": list(version),
            "escape_order": escape_order,
        })
        assert isinstance(result, str)
        return result

    def run_preprocess(self, pre_script: str, query: str | None, docs: list[str], *,
                       version: Version) -> dict[str, Any]:
        """The request parameters the script yields, after convertScriptStringToJsonString and escaping."""
        result = self._call({
            "op": "run_preprocess", "script": pre_script, "query": query, "docs": list(docs), "version": list(version),
        })
        assert isinstance(result, dict)
        return result

    def postprocess(self, post_script: str, response_text: str, *, version: Version) -> list[dict[str, Any]]:
        """The model tensors ML Commons builds from the script's output over `response_text`, as dicts."""
        result = self._call({
            "op": "postprocess", "script": post_script, "response": response_text, "version": list(version),
        })
        assert isinstance(result, list)
        return result

    def compile(self, script: str) -> None:
        """Compile `script` now (ScriptFailure with javac's message if it is not valid Java in our wrapper)."""
        self._call({"op": "compile", "script": script})

    def close(self) -> None:
        with self._lock:
            if self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._log.close()

    def _call(self, request: dict[str, Any]) -> Any:
        line = base64.b64encode(json.dumps(request, ensure_ascii=False).encode("utf-8")) + b"\n"
        with self._lock:
            stdin, stdout = self._process.stdin, self._process.stdout
            assert stdin is not None and stdout is not None
            try:
                stdin.write(line)
                stdin.flush()
                answer = stdout.readline()
            except (BrokenPipeError, ValueError):
                answer = b""
            if not answer:
                self._log.seek(0)
                tail = self._log.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"the glue JVM stopped (exit {self._process.poll()}):\n{tail}")
        reply = json.loads(base64.b64decode(answer).decode("utf-8"))
        if not reply["ok"]:
            if reply["kind"] == "internal":
                raise RuntimeError(f"glue error: {reply['error']}")
            raise ScriptFailure(reply["error"], reply["kind"])
        return reply["result"]
