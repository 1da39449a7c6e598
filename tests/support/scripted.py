"""Scripted transports under the real `Cluster` wrapper, so serialization and error mapping run for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from opensearchpy.exceptions import TransportError

from os_rerank.cluster import Cluster


def error(status: int, reason: str) -> TransportError:
    return TransportError(status, "error", {"error": {"root_cause": [{"type": "x", "reason": reason}]}})


class Seq(list):  # type: ignore[type-arg]
    """Answers given one per call, the last one repeated."""


class Transport:
    """Answers requests from a list of (method, path regex, answer); a `Seq` answers one item per call."""

    def __init__(self, routes: list[tuple[str, str, Any]]) -> None:
        self.routes = [(m, re.compile(p), a) for m, p, a in routes]
        self.sent: list[tuple[str, str, str | None]] = []

    def perform_request(self, method: str, path: str, params: Any = None, body: bytes | None = None,
                        headers: Any = None) -> Any:
        text = body.decode("utf-8") if body is not None else None
        self.sent.append((method, path, text))
        for m, pattern, answer in self.routes:
            if m == method and pattern.search(path):
                if isinstance(answer, Seq):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if isinstance(answer, Exception):
                    raise answer
                return answer(method, path, text) if callable(answer) else answer
        raise AssertionError(f"unexpected request {method} {path}")


def cluster_for(routes: list[tuple[str, str, Any]]) -> tuple[Cluster, Transport, list[float]]:
    transport = Transport(routes)
    sleeps: list[float] = []

    class Client:
        pass

    client = Client()
    client.transport = transport  # type: ignore[attr-defined]
    return Cluster(client=client, url="http://os:9200", sleep=sleeps.append), transport, sleeps


DATA = Path(__file__).resolve().parents[1] / "data" / "opensearch"


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


class ScriptedTransport:
    """Answers each request with the next scripted response (a dict, or (status, error body) to fail)."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.sent: list[tuple[str, str, dict[str, str], Any]] = []

    def perform_request(self, method: str, path: str, params: Any = None, body: Any = None, headers: Any = None) -> Any:
        self.sent.append((method, path, dict(params or {}), json.loads(body) if body else None))
        answer = self.responses.pop(0)
        if isinstance(answer, tuple):
            status, info = answer
            raise TransportError(status, info.get("error", {}).get("type", "error"), info)
        return answer


def cluster_with(*responses: Any) -> tuple[Cluster, ScriptedTransport]:
    transport = ScriptedTransport(*responses)
    return Cluster(client=SimpleNamespace(transport=transport), url="http://fake:9200", sleep=lambda s: None), transport
