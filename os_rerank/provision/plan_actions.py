"""What a plan is made of: the four kinds of action, `Action` (one step, with the exact requests it sends) and `Plan`
(the steps in apply's order), and the lines `os-rerank plan` prints for them. plan.py decides the actions; apply.py
runs them; dense.py adds its own to the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..wire import Request
from .render import KNOWN_AFTER_APPLY, Version, format_version

CREATE = "create"
UPDATE = "update"
REPLACE = "replace"
NO_CHANGE = "no change"
KINDS = (CREATE, UPDATE, REPLACE, NO_CHANGE)
SYMBOLS = {CREATE: "+", UPDATE: "~", REPLACE: "-/+", NO_CHANGE: "="}


@dataclass(frozen=True)
class Action:
    """One step of a plan. `id` is the existing resource's id; `related` lists ids the step also touches;
    `requests` are the writes it makes, in order (`body` is the main one's body)."""

    kind: str
    resource: str
    name: str
    reason: str
    body: Any = None
    id: str | None = None
    related: tuple[str, ...] = ()
    requests: tuple[Request, ...] = ()

    @property
    def changes(self) -> bool:
        return self.kind != NO_CHANGE

    @property
    def shown_id(self) -> str:
        """The id to show: ML Commons ids are only known once created; an index or pipeline is its name."""
        if self.resource in ("index", "pipeline", "ingest pipeline", "dense index", "hybrid pipeline"):
            return self.name
        if self.kind in (CREATE, REPLACE) and self.resource in ("connector", "model group", "model",
                                                                  "embedding connector", "embedding model"):
            return KNOWN_AFTER_APPLY
        return self.id or "-"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "resource": self.resource, "name": self.name, "id": self.shown_id,
                "reason": self.reason, "body": self.body, "related": list(self.related),
                "requests": [r.to_dict() for r in self.requests]}



@dataclass(frozen=True)
class Plan:
    """The actions setup takes, in order, for OpenSearch `version`."""

    version: Version
    actions: tuple[Action, ...]

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.changes)

    def action(self, resource: str) -> Action | None:
        return next((a for a in self.actions if a.resource == resource), None)

    def summary(self) -> str:
        counts = {k: sum(1 for a in self.actions if a.kind == k) for k in KINDS}
        if not self.changes:
            return f"No changes. All {len(self.actions)} resources match the config."
        return (f"Plan: {counts[CREATE]} to create, {counts[UPDATE]} to update, {counts[REPLACE]} to replace, "
                f"{counts[NO_CHANGE]} unchanged.")

    def to_dict(self) -> dict[str, Any]:
        return {"opensearch_version": format_version(self.version), "summary": self.summary(),
                "actions": [a.to_dict() for a in self.actions]}



def plan_lines(plan: Plan) -> list[str]:
    """The plan as `os-rerank plan` prints it: one line per action, then the summary."""
    lines = [f"OpenSearch {format_version(plan.version)}"]
    width = max(len(a.resource) for a in plan.actions)
    for a in plan.actions:
        lines.append(f"  {SYMBOLS[a.kind]:<3} {a.kind:<9} {a.resource:<{width}}  {a.name}  [{a.shown_id}]")
        lines.append(f"        {a.reason}")
    lines.append(plan.summary())
    return lines
