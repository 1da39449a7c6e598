"""Input files of lines, and JSONL documents, read so that what `validate` accepts is what OpenSearch will take.

One reader for the sample documents (`index.documents`), the eval corpus, queries and judgments: a regular file of
bounded size, UTF-8 (a BOM allowed), lines split on `\\n` only (JSON strings may hold a raw U+2028, U+2029 or
U+0085, which `str.splitlines` would cut at). A document is refused, with file and line, when OpenSearch or the
endpoint could not take it: a lone surrogate (UTF-8 cannot carry it), NaN or Infinity (not JSON), a duplicate key,
a field name OpenSearch reserves (`_...`), a text field that is not a string, a keyword longer than Lucene's
32,766 bytes, an id longer than OpenSearch's 512 bytes.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_FILE_BYTES = 256 << 20
KEYWORD_MAX_BYTES = 32766  # Lucene's limit for one indexed term
ID_MAX_BYTES = 512  # OpenSearch's limit for a document id


def read_lines(path: Path, what: str, shown: str | None = None) -> list[str]:
    """The file's lines (split on \\n only, \\r stripped); ConfigError naming the file when it cannot be used."""
    shown = shown or str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{shown}: {what} file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read the {what}: {exc.strerror}"]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([f"{shown}: the {what} must be a regular file"])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read the {what}: {exc.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([f"{shown}: the {what} is larger than {MAX_FILE_BYTES >> 20} MiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{shown}:{line}: not UTF-8 (byte {raw[exc.start]:#04x})"]) from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def json_object(shown: str, number: int, line: str) -> dict[str, Any]:
    """One JSONL line as an object; ConfigError for anything JSON does not allow or OpenSearch could not index."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError([f"{shown}:{number}: duplicate key {key!r}"])
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ConfigError([f"{shown}:{number}: {name} is not JSON (OpenSearch refuses it)"])

    try:
        value = json.loads(line, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{shown}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"]) from None
    except RecursionError:
        raise ConfigError([f"{shown}:{number}: nested too deeply"]) from None
    if not isinstance(value, dict):
        raise ConfigError([f"{shown}:{number}: expected a JSON object"])
    surrogate = _lone_surrogate(value)
    if surrogate is not None:
        raise ConfigError([f"{shown}:{number}: holds a lone surrogate ({surrogate}), which UTF-8 cannot carry"],
                          fix="a character outside the BMP is written as a surrogate pair (\\ud83d\\ude42), or as is")
    return value


def _lone_surrogate(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"\\u{ord(item[exc.start]):04x}"
    return None


def parse_documents(lines: Sequence[str], shown: str, *, fields: Mapping[str, str], required: Sequence[str],
                    id_keys: Sequence[str] = ("id", "_id"), require_id: bool = False) -> list[dict[str, Any]]:
    """Documents from JSONL lines, each `{"id": ..., <fields>}`; `fields` maps a field to its type (text|keyword)."""
    docs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        doc = json_object(shown, number, line)
        raw_id = next((doc.pop(k) for k in id_keys if k in doc), None)
        for key in id_keys:
            doc.pop(key, None)
        if raw_id is None:
            if require_id:
                raise ConfigError([f"{shown}:{number}: document without an \"id\""])
            raw_id = len(docs) + 1
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
            raise ConfigError([f"{shown}:{number}: the id must be a string or an integer, got {_kind(raw_id)}"])
        doc_id = str(raw_id)
        if not doc_id or len(doc_id.encode("utf-8")) > ID_MAX_BYTES:
            raise ConfigError([f"{shown}:{number}: the id must be 1 to {ID_MAX_BYTES} bytes long"])
        if doc_id in seen:
            raise ConfigError([f"{shown}:{number}: duplicate id {doc_id!r}"])
        for key in doc:
            if not key or key.startswith("_"):
                raise ConfigError([f"{shown}:{number}: field name {key!r} is reserved by OpenSearch (or empty)"])
        missing = [f for f in required if f not in doc]
        if missing:
            raise ConfigError([f"{shown}:{number}: document {doc_id!r} lacks {', '.join(missing)}"],
                              fix="every document needs the fields in pipeline.document_fields")
        for name, kind in fields.items():
            if name not in doc:
                continue
            value = doc[name]
            if not isinstance(value, str):
                raise ConfigError([f"{shown}:{number}: document {doc_id!r}: {name} must be a string (index.fields "
                                   f"maps it as {kind}), got {_kind(value)}"])
            if kind == "keyword" and len(value.encode("utf-8")) > KEYWORD_MAX_BYTES:
                raise ConfigError([f"{shown}:{number}: document {doc_id!r}: {name} is a keyword of more than "
                                   f"{KEYWORD_MAX_BYTES} bytes, which Lucene refuses"], fix="map it as text")
        seen.add(doc_id)
        docs.append({"id": doc_id, **doc})
    if not docs:
        raise ConfigError([f"{shown}: no documents"])
    return docs


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null", float: "a number",
            int: "a number"}.get(type(value), type(value).__name__)
