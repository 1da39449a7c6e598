"""Everything os-rerank prints goes through here: tables, JSON, progress events, and secret redaction."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .events import Event, OnEvent
from .render import Rendered


@dataclass
class Env:
    """The command's world (httpie's Environment): environment variables and the two output streams."""

    environ: Mapping[str, str]
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    # Values that must never be printed (AWS keys, tokens, the password); filled as they become known.
    secrets: set[str] = field(default_factory=set)

    def out(self, text: str = "", *, raw: bool = False) -> None:
        """Print a line (secrets redacted; control characters made visible unless `raw`, for --json)."""
        text = redact(text, self.secrets)
        print(text if raw else visible(text), file=self.stdout)

    def err(self, text: str = "") -> None:
        print(visible(redact(text, self.secrets)), file=self.stderr)


# What must not reach a terminal as is from data (documents, cluster messages): C0 controls but tab and newline
# (ESC starts escape sequences, BEL rings, CR overwrites), DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what is shown (U+202E makes "exe.txt" read "txt.exe").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every terminal-unsafe character written as its escape (\\x1b, \\u202e)."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                       text)


# Shapes of secrets, redacted even when we were not told the value (defence in depth): AWS key ids; the password in
# a URL's user-info (`https://user:pw@host`); and a value assigned to a secret-sounding key, when it is quoted or
# follows `=` (`"password": "x"`, `secret_key=x`). A bare `password: x` is left alone: that is how os-rerank's own
# messages name a field ("opensearch.auth.password: secrets are never read ..."), and a known password is redacted
# by value anyway.
_SECRET_PATTERNS = [
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@"),
    re.compile(r"(?i)(aws_secret_access_key|secret_key|session_token|password)"
               r"(\"\s*:\s*\"|\s*=\s*\"?|:\s*\")(?!\$\()([^\s\",}]+)"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret value, and anything shaped like a secret (above), replaced by ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub("***", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + "***@", text)
    return _SECRET_PATTERNS[2].sub(lambda m: m.group(1) + m.group(2) + "***", text)


def progress(env: Env, prefix: str = "") -> OnEvent:
    """The callback a command hands the library: each event one line on stderr, so stdout keeps only the result."""
    def show(event: Event) -> None:
        env.err(prefix + event.line())
    return show


def print_json(env: Env, value: Any) -> None:
    """--json: the data exactly (JSON escapes every control character itself), secrets redacted."""
    env.out(json.dumps(value, ensure_ascii=False, indent=2), raw=True)


def print_rendered(env: Env, rendered: Sequence[Rendered]) -> None:
    """Each request as `METHOD path` then its body, separated by blank lines (render's output)."""
    for i, item in enumerate(rendered):
        if i:
            env.out()
        env.out(f"# {item.what}")
        env.out(f"{item.method} {item.path}")
        env.out(item.body.rstrip("\n"))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table; wide Unicode counts as two columns so Korean and Hindi line up."""
    cells = [[str(h) for h in headers], *[[("" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(pad(c, widths[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def display_width(text: str) -> int:
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def snippet(text: str, limit: int = 80) -> str:
    """One line of at most `limit` display columns: whitespace folded, an ellipsis where cut."""
    flat = " ".join(str(text).split())
    if display_width(flat) <= limit:
        return flat
    out, width = [], 0
    for ch in flat:
        w = display_width(ch)
        if width + w > limit - 1:
            break
        out.append(ch)
        width += w
    return "".join(out) + "…"
