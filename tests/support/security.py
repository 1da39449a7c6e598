"""The admin of a real secured node, for the tests that create users and roles."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class Admin:
    """The node's admin, over HTTPS verified with its CA."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.url = environ["OPENSEARCH_URL"]
        self.context = ssl.create_default_context(cafile=environ["OPENSEARCH_CA_CERTS"])
        token = f"{environ['OPENSEARCH_USERNAME']}:{environ['OPENSEARCH_PASSWORD']}"
        self.auth = "Basic " + base64.b64encode(token.encode()).decode()

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"content-type": "application/json", "authorization": self.auth})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
