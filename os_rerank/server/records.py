"""What the endpoint keeps of the requests it received: `ReceivedRequest` (for tests) and the --record file lines."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RecordError(Exception):
    """The record file cannot be written (raised at start, so a bad --record path is refused before serving)."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST the server received: the exact body bytes, before any parsing."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def check_record_file(path: Path) -> None:
    """RecordError unless `path` can be appended to (checked at start, before serving)."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise RecordError(f"cannot write the record file {path}: {exc.strerror or exc}") from None


def record_line(request: ReceivedRequest) -> str:
    """The --record file's line for one request: method, path, content type, and the body (UTF-8) or its base64."""
    line: dict[str, Any] = {"method": request.method, "path": request.path,
                            "content_type": request.headers.get("content-type")}
    try:
        line["body"] = request.body.decode("utf-8")
    except UnicodeDecodeError:
        line["body_base64"] = base64.b64encode(request.body).decode()
    text = json.dumps(line, ensure_ascii=False)
    # Keep one record per line for readers that split on every Unicode line break, not just \n.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
