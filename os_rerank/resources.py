"""Where the shipped templates/ and painless/ folders are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder `name` ("templates" or "painless"): inside the installed package, else at the repository top."""
    installed = _PACKAGE / name  # a wheel install puts them here (pyproject package-dir)
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name  # a checkout or an editable install


def read_painless(file_name: str) -> str:
    """The source of one Painless script, exactly as stored."""
    return (resource_dir("painless") / file_name).read_text(encoding="utf-8")
