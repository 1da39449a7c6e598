"""Planned requests: the exact writes a plan carries, with typed placeholders for what only apply can supply. Pure.

A `Request` is one write: method, path, body, content type. Its body is text sent as is (the NDJSON of _bulk) or
a JSON structure that `dumps` spells; either may hold placeholders:
- `Ref(resource)`: the id of a resource an earlier step of the same run creates ("connector", "model group",
  "model"). The request whose `yields` names that resource reads the id from its response.
- `Secret(name, shown)`: a value apply holds and a plan never does (the connector credential).
Placeholders are *objects* in the structure, never text in it: user text that reads `${connector_id}`, `***` or
"(known after apply)" is a plain string and stays exactly that. Each placeholder subclasses the type it shows as
(a Ref is the str "(known after apply)", a Secret the dict of `***`), so `plan --json` prints a plan as is, and
`fill(value, values)` swaps each one, by type, for its value. Apply sends `request.filled(values)` and nothing
else; tests/scenarios/test_plan_exact.py records what the cluster client sends and compares it with the filled plan.

Adding a resource kind (an embedding model, an ingest pipeline, a k-NN index, a hybrid search pipeline): render
its body with `Ref`s for the ids it needs (render turns placeholders passed to a template back into objects),
return an `Action` whose `requests` list its writes in order (`yields` on the one that creates an id other steps
refer to), and apply runs it: a resource without its own handler in apply.py has its requests sent in order, the
id a `yields` request's response names (`<kind>_id`) filling the Refs of later steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KNOWN_AFTER_APPLY = "(known after apply)"

# What apply does with a request besides sending it: "deploy" waits until the model is DEPLOYED, "undeploy"
# tolerates a model that is gone. Both go through apply's model lifecycle, which sends exactly `path`.
SEND, DEPLOY, UNDEPLOY = "send", "deploy", "undeploy"


class Ref(str):
    """The id of `resource`, known once an earlier step of the run created it; shows as (known after apply)."""

    resource: str

    def __new__(cls, resource: str) -> Ref:
        self = super().__new__(cls, KNOWN_AFTER_APPLY)
        self.resource = resource
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle rebuild it from its resource, not its text
        return (Ref, (self.resource,))

    def __repr__(self) -> str:
        return f"Ref({self.resource!r})"


class Secret(dict[str, Any]):
    """A value only apply holds, named `name`; shows as `shown` (every secret value ***)."""

    name: str

    def __init__(self, name: str, shown: Mapping[str, Any]) -> None:
        super().__init__(shown)
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self.name, dict(self)))

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"


def fill(value: Any, values: Mapping[str, Any]) -> Any:
    """`value` with every placeholder whose name is in `values` replaced by its value; the others stay."""
    if isinstance(value, Ref):
        return values.get(value.resource, value)
    if isinstance(value, Secret):
        return values.get(value.name, value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill(v, values) for v in value]
    return value


def placeholders(value: Any) -> list[Ref | Secret]:
    """The placeholders left in `value`."""
    if isinstance(value, (Ref, Secret)):
        return [value]
    if isinstance(value, dict):
        return [p for v in value.values() for p in placeholders(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in placeholders(v)]
    return []



def dumps(value: Any) -> str:
    """The one JSON spelling of every body: UTF-8 text as is, two-space indent, no trailing newline."""
    return json.dumps(value, ensure_ascii=False, indent=2)

@dataclass(frozen=True)
class Request:
    """One write a plan makes. `path` is a str, or a tuple of parts when it holds a Ref (deploy of a new model)."""

    method: str
    path: str | tuple[str, ...]
    body: Any = None  # None, text sent as is, or a JSON structure
    content_type: str = "application/json"
    missing_ok: bool = False  # a 404 means it is already done (a delete, an undeploy)
    yields: str | None = None  # the resource whose id the response gives (a Ref elsewhere in the plan)
    role: str = SEND
    target: str | None = None  # the model a deploy/undeploy acts on (an id, or a Ref)

    @property
    def shown_path(self) -> str:
        return self.path if isinstance(self.path, str) else "".join(self.path)

    def filled(self, values: Mapping[str, Any]) -> Request:
        """This request with `values` in place of its placeholders; a placeholder without a value is a bug."""
        parts = fill([self.path] if isinstance(self.path, str) else list(self.path), values)
        body = fill(self.body, values)
        target = fill(self.target, values)
        left = placeholders([parts, body, target])
        if left:
            raise AssertionError(f"{self.method} {self.shown_path}: no value for {left!r}")
        path = "".join(parts)
        return Request(self.method, path, body, self.content_type, self.missing_ok, self.yields, self.role, target)

    def text(self) -> str | None:
        """The body exactly as it goes on the wire."""
        if self.body is None or isinstance(self.body, str):
            return self.body
        return dumps(self.body)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.shown_path, "body": self.body}
        if self.body is not None:
            out["content_type"] = self.content_type
        if self.role == DEPLOY:
            out["then"] = "wait until the model is DEPLOYED"
        return out
