"""The building blocks every configuration section shares: the strict base model, the patterns of AWS names, and
the URL check. Its own module so that the sections of config.py, config_deploy.py and config_embedding.py agree on
them without importing each other.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class EndpointAddress(Strict):
    """What the `sagemaker` and `embedding` sections share: an endpoint named, or addressed by its full invocation
    URL (`endpoint_url`, from OpenSearch's side), and where os-rerank itself reaches it (`local_endpoint_url`).
    The fields, with their descriptions, are each section's own."""

    if TYPE_CHECKING:  # each section declares these fields itself (in its own order, with its descriptions)
        endpoint_name: str | None
        endpoint_url: str | None
        local_endpoint_url: str | None

    @field_validator("endpoint_url", "local_endpoint_url", check_fields=False)
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return None if v is None else http_url(v)

    @model_validator(mode="after")
    def _name_known(self) -> EndpointAddress:
        if self.endpoint_name is None and self.endpoint_url is None:
            raise ValueError("set endpoint_name (or endpoint_url, the full invocation URL)")
        if self.endpoint_name is None and not INVOCATIONS_PATH.search(str(self.endpoint_url)):
            raise ValueError("endpoint_url must end in /endpoints/<name>/invocations, or set endpoint_name too")
        return self

    @property
    def name(self) -> str:
        """The endpoint's name, as boto3's invoke_endpoint wants it."""
        if self.endpoint_name:
            return self.endpoint_name
        match = INVOCATIONS_PATH.search(str(self.endpoint_url))
        assert match is not None  # guaranteed by _name_known
        return match.group(1)
