"""The failures a test injects into the local endpoint (`EndpointServer.fail_next`): the next scoring requests get
a chosen status and body instead of a score, in the order they were asked for. Kept apart from the routes so that
app.py reads as the endpoint itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .transport import Reply


@dataclass
class _Fault:
    reply: Reply
    remaining: int


class Faults:
    """The injected replies still to give, oldest first; safe to use from the handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
        *,
        error_type: str | None = None,
    ) -> None:
        """Answer the next `count` scoring requests with `status` and `body` (default `{"message": ...}`)."""
        if body is None:
            raw = json.dumps({"message": f"Injected failure ({status} {error_type or ''})".replace(" )", ")")}).encode()
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(dict(body)).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if error_type:
            hdrs["x-amzn-ErrorType"] = error_type
        with self._lock:
            self._faults.append(_Fault(Reply(status, raw, tuple(hdrs.items())), count))

    def take(self) -> Reply | None:
        """The next injected reply, if any (each is given `count` times)."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault.reply

    def clear(self) -> None:
        """Forget every injected reply not given yet."""
        with self._lock:
            self._faults.clear()
