"""The building blocks every configuration section shares: the strict base model, the patterns of AWS names, and
the URL check. Its own module so that the sections of config.py, config_deploy.py and config_embedding.py agree on
them without importing each other.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d+$"
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
INVOCATIONS_PATH = re.compile(r"/endpoints/([^/]+)/invocations$")

NonEmpty = Annotated[str, Field(min_length=1)]
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def http_url(value: str) -> str:
    """`value` as an http(s) URL without a trailing slash; ValueError saying what is wrong with it.

    Checked the way urllib and opensearch-py will read it later, so that a URL `validate` accepts never fails in
    `plan`: a host, a numeric port in range, no query or fragment, no spaces or control characters.
    """
    from urllib.parse import urlsplit

    shown = repr(value) if len(value) <= 200 else repr(value[:200] + "…")
    if _CONTROL.search(value):
        raise ValueError(f"a URL has no spaces or control characters, got {shown}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {shown}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"the port of {shown} is not a number from 1 to 65535")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"expected a URL without ?query or #fragment, got {shown}")
    return value.rstrip("/")


class Strict(BaseModel):
    # defer_build: only Config validates a whole file; building each section's own validator at import cost ~45 ms
    # of every command's start-up, for validators that are built on first use instead.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
