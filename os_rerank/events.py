"""Progress: the one event type every library function reports through, and the one callback that receives it.

The library never prints. A command hands an `OnEvent` to the library; output.py shows each event as one line on
stderr, so stdout holds only the command's result (its table, summary or --json). An event knows how it reads
(`line()`) because apply's plan-like symbols (`+` created, `~` changed, `-` deleted, `=` unchanged) are part of
what it is; a plain `note` reads as its message alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NOTE = "note"

SYMBOLS = {"create": "+", "update": "~", "deploy": "~", "undeploy": "~", "load": "~", "delete": "-", "retry": "!",
           "wait": ".", "unchanged": "=", "failed": "!"}


@dataclass(frozen=True)
class Event:
    """One thing a command did or is waiting on: what kind, to which resource (and its id), said in words."""

    kind: str
    resource: str
    name: str
    message: str
    id: str | None = None

    def line(self) -> str:
        if self.kind == NOTE:
            return self.message
        return f"{SYMBOLS.get(self.kind, '*')} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "resource": self.resource, "name": self.name, "id": self.id,
                "message": self.message}


OnEvent = Callable[[Event], None]


def note(message: str, resource: str = "", name: str = "") -> Event:
    """A progress line with no resource state behind it ("waiting for ...", "uploading ...")."""
    return Event(NOTE, resource, name, message)


def ignore(event: Event) -> None:
    """The callback for a caller that does not want progress."""
