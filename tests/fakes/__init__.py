"""Test doubles that sit at the real seams (STYLE rule 7). Not importable from `os_rerank`."""

from .http import RecordedRequest
from .opensearch_double import OpenSearchDouble

__all__ = ["OpenSearchDouble", "RecordedRequest"]
