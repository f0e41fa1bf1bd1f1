"""The state of one conversation: everything the engine needs, nothing it does not.

A session is plain data (JSON-able) so that any store can keep it and any replica
can continue it. The engine never mutates a session it was given; it returns a new
one inside the `Turn`. (Value objects on the per-step path are `slots` dataclasses,
treated as immutable but not `frozen`: frozen construction tripled a step's cost.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A slot holds what the user answered, already parsed: a number of days, an amount of
# money, a choice value, a yes/no, or the evidence ids found in their own words.
SlotValue = int | float | str | bool | list[str]

SESSION_SCHEMA = 1


def range_keys(slot_name: str) -> tuple[str, str]:
    """Where a typed range's ends are kept beside the slot's middle value ("3–4个月")."""
    return f"{slot_name}__low", f"{slot_name}__high"


@dataclass(slots=True)
class Snapshot:
    """Where the conversation was before an answer, so `/back` can return there."""

    flow: str
    state: str
    slots: dict[str, SlotValue]

    def to_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "state": self.state, "slots": dict(self.slots)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return cls(str(data["flow"]), str(data["state"]), dict(data.get("slots", {})))


@dataclass(slots=True)
class Session:
    """One user's conversation with one flow.

    `version` grows by one with every change; a button carries the version it was
    shown at, which is how a stale button is told from a current one.
    """

    flow: str
    state: str
    locale: str
    slots: dict[str, SlotValue] = field(default_factory=dict)
    history: tuple[Snapshot, ...] = ()
    version: int = 0
    # Crisis help was shown in this conversation (shown again only on new words of despair).
    flags: frozenset[str] = frozenset()
    # The user's messages since the crisis reply was last shown (None: never shown), so
    # the reply comes back when despair does, but not on every message of a long exchange.
    since_crisis: int | None = None

    def evolve(self, **changes: Any) -> Session:
        """A copy with `changes` applied and the version bumped."""
        changes.setdefault("version", self.version + 1)
        # Spelled out rather than dataclasses.replace: this runs on every step.
        return Session(
            flow=changes.get("flow", self.flow),
            state=changes.get("state", self.state),
            locale=changes.get("locale", self.locale),
            slots=changes.get("slots", self.slots),
            history=changes.get("history", self.history),
            version=changes["version"],
            flags=changes.get("flags", self.flags),
            since_crisis=changes.get("since_crisis", self.since_crisis),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SESSION_SCHEMA,
            "flow": self.flow,
            "state": self.state,
            "locale": self.locale,
            "slots": dict(self.slots),
            "history": [snap.to_dict() for snap in self.history],
            "version": self.version,
            "flags": sorted(self.flags),
            "since_crisis": self.since_crisis,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        """Rebuild a session from `to_dict` output; raises KeyError/TypeError/ValueError on bad data."""
        return cls(
            flow=str(data["flow"]),
            state=str(data["state"]),
            locale=str(data["locale"]),
            slots=dict(data.get("slots", {})),
            history=tuple(Snapshot.from_dict(s) for s in data.get("history", [])),
            version=int(data.get("version", 0)),
            flags=frozenset(str(f) for f in data.get("flags", [])),
            since_crisis=None if data.get("since_crisis") is None else int(data["since_crisis"]),
        )
