"""The anonymous events one turn counts, for the operators' funnel (`python -m bot stats`).

Pure: a function of the engine, the event, the turn and the session before it. What
is counted is where a conversation went (questions reached and answered, the plan, the
end), the option a product question was answered with, and bands of days and amounts,
never the number itself, and never anything a person typed. The store keeps the chat
only as a keyed hash, so a conversation is followed without knowing whose it is.

Event names (the store counts by name; `bot.stats.report` reads them back):

| name | when | data |
|------|------|------|
| `conversation_started` | a conversation begins (first message, /start, /restart, after an end) | `{}` |
| `asked.<flow>.<state>` | a question is shown | `{}` |
| `answered.<flow>.<state>` | a question is left by an answer (or Skip) | `{}` |
| `plan_shown.<flow>.<cause>` | the turn passed `milestone: plan`; `cause` is the top cause | `{}` |
| `finished.<flow>` | an `end: true` state was reached | `{}` |
| `product.<value>` | the cost estimate's product slot was answered | `{}` |
| `overdue.<band>` | its days slot was answered (`DAY_BANDS`) | `{}` |
| `amount.<band>` | its amount slot was answered (`AMOUNT_BANDS`) | `{}` |

Follow-up outcomes (`followup.<outcome>`) are counted by the reminders, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any

from bot.engine.engine import Engine
from bot.engine.events import Chose, Command, CommandName, Event, Said
from bot.engine.session import Session, SlotValue
from bot.engine.turn import Turn

STARTED = "conversation_started"
ASKED = "asked"
ANSWERED = "answered"
PLAN_SHOWN = "plan_shown"
FINISHED = "finished"
PRODUCT = "product"
OVERDUE = "overdue"
AMOUNT = "amount"
FOLLOWUP = "followup"
# The `milestone:` of the dialog state that shows the plan.
PLAN_MILESTONE = "plan"
# The top cause when no cause could be ranked (a spec without causes).
NO_CAUSE = "none"


@dataclass(frozen=True)
class Band:
    """A range of a number, by its key in event names: `low` < value <= `high`."""

    key: str
    low: Decimal | None
    high: Decimal | None

    def holds(self, value: Decimal) -> bool:
        return (self.low is None or value > self.low) and (self.high is None or value <= self.high)

    @property
    def label(self) -> str:
        """Language-neutral: `≤30`, `31–60`, `>365` (thousands grouped)."""
        if self.low is None:
            return f"≤{_grouped(self.high)}"
        if self.high is None:
            return f">{_grouped(self.low)}"
        return f"{_grouped(self.low + 1)}–{_grouped(self.high)}"


def _grouped(value: Decimal | None) -> str:
    return f"{int(value or 0):,}"


def _bands(*limits: int) -> tuple[Band, ...]:
    edges: list[Decimal | None] = [None, *(Decimal(limit) for limit in limits), None]
    bands = []
    for low, high in pairwise(edges):
        if low is None:
            key = f"le_{high}"
        elif high is None:
            key = f"gt_{low}"
        else:
            key = f"{low + 1}_{high}"
        bands.append(Band(key, low, high))
    return tuple(bands)


# Days overdue: the banks' 30-day cycles (M1, M2, M3), then 90 days (where the plan turns
# serious), half a year and a year.
DAY_BANDS = _bands(30, 60, 90, 180, 365)
# Amounts in yuan: the quick plan's 5,000, the serious plan's 50,000 for cards, and between.
AMOUNT_BANDS = _bands(5_000, 20_000, 50_000, 100_000)


def band_of(value: SlotValue, bands: Sequence[Band]) -> Band | None:
    """The band holding a number slot's value; None for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = Decimal(str(value))
    return next((band for band in bands if band.holds(number)), None)


@dataclass(frozen=True)
class Count:
    """One anonymous event to count: its name and its (non-personal) data."""

    name: str
    data: dict[str, Any]


def funnel_events(engine: Engine, event: Event, turn: Turn, before: Session | None) -> list[Count]:
    """The events `turn` counts; `before` is the session the event was applied to (None
    for a chat without one). The order is the order things happened in the turn."""
    spec = engine.spec
    counts: list[Count] = []
    entry = spec.flows[spec.entry_flow]
    back = isinstance(event, Command) and event.name is CommandName.BACK
    if before is None or ((entry.name, entry.start) in turn.passed and not back):
        # Every (re)start enters the entry flow's first state; /back may too, but goes on.
        counts.append(Count(STARTED, {}))
    answered = _answered(event, turn, before)
    if answered is not None:
        flow, state = answered
        counts.append(Count(f"{ANSWERED}.{flow}.{state}", {}))
        counts.extend(_profile(engine, flow, state, turn.session.slots))
    if PLAN_MILESTONE in turn.milestones and turn.changed:
        ranking = engine.assess(turn.session.slots)
        cause = ranking[0].cause.id if ranking else NO_CAUSE
        counts.append(Count(f"{PLAN_SHOWN}.{turn.session.flow}.{cause}", {}))
    if turn.finished and turn.changed:
        counts.append(Count(f"{FINISHED}.{turn.session.flow}", {}))
    if turn.question is not None and turn.changed:
        counts.append(Count(f"{ASKED}.{turn.session.flow}.{turn.session.state}", {}))
    return counts


def _answered(event: Event, turn: Turn, before: Session | None) -> tuple[str, str] | None:
    """The (flow, state) the event answered: an answer adds one snapshot of the question
    it left to the history (a re-prompt, a stale button or a command do not)."""
    if before is None or not isinstance(event, Said | Chose) or turn.stale or not turn.changed:
        return None
    history = turn.session.history
    if len(history) != len(before.history) + 1:
        return None
    left = history[-1]
    return (left.flow, left.state) if (left.flow, left.state) == (before.flow, before.state) else None


def _profile(engine: Engine, flow_name: str, state_name: str, slots: dict[str, SlotValue]) -> list[Count]:
    """Product and bands, when the answered question fills a slot the cost estimate reads
    (costs.yaml `needs:`, so no slot name is written here)."""
    needs = engine.spec.cost_inputs
    flow = engine.spec.flows.get(flow_name)
    state = flow.states.get(state_name) if flow else None
    if needs is None or state is None or state.slot is None or state.slot not in slots:
        return []
    value = slots[state.slot]
    if state.slot == needs.product:
        # Only a value the dialogs offer (an option), never text.
        offered = {option.value for option in state.options}
        return [Count(f"{PRODUCT}.{value}", {})] if value in offered else []
    for slot, prefix, bands in ((needs.days, OVERDUE, DAY_BANDS), (needs.amount, AMOUNT, AMOUNT_BANDS)):
        if state.slot == slot and (band := band_of(value, bands)) is not None:
            return [Count(f"{prefix}.{band.key}", {})]
    return []
