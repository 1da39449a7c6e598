"""`os-rerank serve` as a subprocess in tests: its start-up banner, read up to the line that gives its URL."""

from __future__ import annotations

import subprocess


def read_banner(proc: subprocess.Popen[str], limit: int = 12) -> tuple[list[str], str]:
    """The banner lines serve prints before it listens, and the URL of its `listening on` line ('' if none came)."""
    assert proc.stdout is not None
    banner: list[str] = []
    for _ in range(limit):
        line = proc.stdout.readline()
        banner.append(line)
        if line.startswith("listening on ") or not line:
            break
    return banner, banner[-1].removeprefix("listening on ").strip()
