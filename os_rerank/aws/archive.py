"""model.tar.gz for the Hugging Face DLC: os-rerank's handler under `code/`, and optionally a local model directory.

Local files only (no network, no printing). The archive is deterministic: entries sorted by name, mtime 0, owner
root:root with empty names, modes 0644, regular files only (a symlinked file, as in a Hugging Face cache snapshot,
is stored as the file it points to), and a gzip header without a name or time. The same inputs give the same bytes,
so the SHA-256 of the archive names it in S3 and in the SageMaker model, and an unchanged deploy writes nothing.
(gzip output is stable for one zlib; a different zlib build may compress differently, which costs one re-upload.)

Layout (what `tar zcvf model.tar.gz *` gives in the public write-ups of docs/sources.md, with our code):

    config.json, tokenizer files, weights, model.onnx ...   the model directory, when one is packaged
    code/inference.py                                       os_rerank/server/inference.py, unchanged
    code/os_rerank/__init__.py, contracts.py,               what inference.py imports, copied unchanged: the
    code/os_rerank/embedding_contracts.py,                  container runs the scoring (or embedding) code of
    code/os_rerank/server/__init__.py, scorers.py,          the os-rerank that deployed it, with nothing to
    code/os_rerank/server/embedders.py, onnx_scorer.py      install from PyPI

No `code/requirements.txt`: the DLC already has transformers and torch, which is all the handler needs, and a
requirements file would make every endpoint start depend on reaching PyPI.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # os_rerank/, whose files code/ vendors
# The handler and the modules it imports, as (archive path, path under os_rerank/). Keep in step with the imports
# of server/inference.py: tests/test_model_archive.py imports the handler from an unpacked archive alone.
CODE_FILES: tuple[tuple[str, str], ...] = (
    ("code/inference.py", "server/inference.py"),
    ("code/os_rerank/__init__.py", "__init__.py"),
    ("code/os_rerank/contracts.py", "contracts.py"),
    ("code/os_rerank/embedding_contracts.py", "embedding_contracts.py"),
    ("code/os_rerank/server/__init__.py", "server/__init__.py"),
    ("code/os_rerank/server/embedders.py", "server/embedders.py"),
    ("code/os_rerank/server/onnx_scorer.py", "server/onnx_scorer.py"),
    ("code/os_rerank/server/scorers.py", "server/scorers.py"),
)
ARCHIVE_NAME = "model.tar.gz"


class ModelDirError(ValueError):
    """The model directory cannot be packaged; the message names the directory and what is missing."""


@dataclass(frozen=True)
class ModelArchive:
    """A built model.tar.gz: where it is, its SHA-256 (hex), its size and the names inside, in order."""

    path: Path
    sha256: str
    size: int
    members: tuple[str, ...]
    model_dir: Path | None

    @property
    def short_hash(self) -> str:
        """The first 16 hex digits: the archive's folder in S3."""
        return self.sha256[:16]


def model_files(model_dir: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every file of a local model directory, sorted; ModelDirError if it is not one.

    Names starting with "." (.git, .cache, .gitattributes) are left out, as the write-ups' `tar zcvf model.tar.gz *`
    leaves them out; so is a top-level `code/`, which os-rerank's handler replaces.
    """
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: not a directory")
    if not (model_dir / "config.json").is_file():
        raise ModelDirError(f"{model_dir}: no config.json; expected a directory saved with save_pretrained() "
                            "(config, tokenizer, weights or model.onnx)")
    out: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(model_dir):
        rel_root = Path(root).relative_to(model_dir)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (rel_root == Path(".") and d == "code")]
        for name in files:
            path = Path(root) / name
            if name.startswith(".") or not path.is_file():  # a dangling link or a socket is not model data
                continue
            out.append(((rel_root / name).as_posix(), path))
    return sorted(out)


def _code_files() -> list[tuple[str, Path]]:
    return [(name, PACKAGE_ROOT / source) for name, source in CODE_FILES]


def archive_members(model_dir: Path | None) -> list[tuple[str, Path]]:
    """Everything the archive holds, sorted by archive name."""
    members = _code_files() + (model_files(model_dir) if model_dir is not None else [])
    return sorted(members)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `target`."""

    def __init__(self, target: io.BufferedWriter) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def build_model_archive(model_dir: Path | None, target: Path) -> ModelArchive:
    """Write the deterministic model.tar.gz to `target` (streamed: a model of gigabytes is never held in memory)."""
    members = archive_members(model_dir)
    with target.open("wb") as raw:
        hashing = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0, compresslevel=6) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in members:
                size = path.stat().st_size
                with path.open("rb") as handle:
                    tar.addfile(_tarinfo(name, size), handle)
    return ModelArchive(path=target, sha256=hashing.digest.hexdigest(), size=hashing.size,
                        members=tuple(name for name, _ in members), model_dir=model_dir)
