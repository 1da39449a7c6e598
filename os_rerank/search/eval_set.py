"""The judged query set `eval` reads: queries (JSONL or TSV), judgments (TREC qrels or JSONL), an optional JSONL
corpus, and the depths to evaluate at. Every parse error names the file and line; nothing here touches a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..documents import json_object, parse_documents, read_lines
from ..errors import ConfigError

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Query:
    id: str
    text: str


def _read_lines(path: Path, what: str) -> list[str]:
    return read_lines(path, what)


def _json_object(path: Path, number: int, line: str) -> dict[str, Any]:
    return json_object(str(path), number, line)


def _is_jsonl(lines: Sequence[str]) -> bool:
    first = next((line.strip() for line in lines if line.strip()), "")
    return first.startswith("{")


def load_queries(path: str | Path) -> list[Query]:
    """Queries from JSONL (`{"id", "text"}` per line) or TSV (`id<TAB>text`); ConfigError naming file and line."""
    path = Path(path)
    lines = _read_lines(path, "queries")
    jsonl = _is_jsonl(lines)
    out: list[Query] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or (not jsonl and line.startswith("#")):
            continue
        if jsonl:
            obj = _json_object(path, number, line)
            qid, text = obj.get("id", obj.get("query_id")), obj.get("text", obj.get("query"))
            if qid is None or not isinstance(text, str):
                raise ConfigError([f"{path}:{number}: expected {{\"id\": ..., \"text\": \"...\"}}"])
        else:
            parts = line.split("\t", 1)
            if len(parts) != 2:
                raise ConfigError([f"{path}:{number}: expected id<TAB>text"])
            qid, text = parts
        qid = str(qid).strip()
        if not qid or not text.strip():
            raise ConfigError([f"{path}:{number}: empty query id or text"])
        if qid in seen:
            raise ConfigError([f"{path}:{number}: duplicate query id {qid!r}"])
        seen.add(qid)
        out.append(Query(qid, text.strip()))
    if not out:
        raise ConfigError([f"{path}: no queries"])
    return out


def load_qrels(path: str | Path) -> Qrels:
    """Judgments from TREC qrels (`qid 0 docid rel`) or JSONL (`{"query_id", "doc_id", "relevance"}`)."""
    path = Path(path)
    lines = _read_lines(path, "judgments")
    jsonl = _is_jsonl(lines)
    out: Qrels = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or (not jsonl and line.startswith("#")):
            continue
        if jsonl:
            obj = _json_object(path, number, line)
            if not all(k in obj for k in ("query_id", "doc_id", "relevance")):
                raise ConfigError([f"{path}:{number}: expected {{\"query_id\", \"doc_id\", \"relevance\"}}"])
            qid, doc, rel = str(obj["query_id"]), str(obj["doc_id"]), obj["relevance"]
        else:
            parts = line.split()
            if len(parts) != 4:
                raise ConfigError([f"{path}:{number}: expected 4 columns `query_id 0 doc_id relevance`, "
                                   f"found {len(parts)}"])
            qid, _, doc, rel = parts
        try:
            grade = int(rel)
        except (TypeError, ValueError):
            raise ConfigError([f"{path}:{number}: relevance must be an integer, not {rel!r}"]) from None
        if isinstance(rel, bool) or isinstance(rel, float) and rel != grade:
            raise ConfigError([f"{path}:{number}: relevance must be an integer, not {rel!r}"])
        out.setdefault(qid, {})[doc] = grade
    if not out:
        raise ConfigError([f"{path}: no judgments"])
    return out


def load_corpus(path: str | Path, fields: Sequence[str], types: Mapping[str, str] | None = None
                ) -> list[dict[str, Any]]:
    """Documents from JSONL (`{"id", <fields>...}`); each must carry the pipeline's document fields (`fields`), as
    strings of the types `types` maps them to (index.fields)."""
    path = Path(path)
    return parse_documents(_read_lines(path, "corpus"), str(path), fields=types or dict.fromkeys(fields, "text"),
                           required=fields, id_keys=("id", "_id", "doc_id"), require_id=True)


def parse_depths(text: str) -> tuple[int, ...]:
    """(10, 20, 50) from "10,20,50"; ConfigError for anything but positive integers."""
    try:
        depths = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError([f"--depths must be comma-separated integers like 10,20,50, not {text!r}"]) from None
    if not depths or depths[0] < 1:
        raise ConfigError([f"--depths must be positive integers, not {text!r}"])
    return tuple(depths)
