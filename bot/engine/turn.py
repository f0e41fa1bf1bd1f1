"""What the engine answers: channel-neutral, untranslated, ready to render.

Texts are `Msg` (an English msgid plus values); the channel translates them with the
session's locale at render time, so switching language re-renders the same turn.
These are values: never mutate one after creating it (`Turn` is frozen; the small
ones built many times per step are not, see session.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from bot.engine.session import Session, SlotValue
from bot.spec.actions import ActionName


@dataclass(slots=True)
class Money:
    """An amount in yuan, formatted by locale (¥15,000.00 / CN¥15,000.00)."""

    amount: Decimal


@dataclass(slots=True)
class Days:
    """A number of days, formatted with the locale's plural (1 day, 45 days, 45天)."""

    count: int


@dataclass(slots=True)
class Percent:
    """A share between 0 and 1, formatted as a whole percentage."""

    share: float


@dataclass(slots=True)
class When:
    """An instant, shown as a date and time of day in time zone `zone` (an IANA name),
    formatted by locale (Wed, Mar 12, 2025, 09:00 / 2025年3月12日周三 09:00); the date
    alone when `clock` is False (a repayment's due date)."""

    instant: datetime
    zone: str
    clock: bool = True


@dataclass(slots=True)
class Msg:
    """A translatable text: `msgid` is the English source; `values` fill its {placeholders}.

    A `str` value is inserted as it is (it may come from the user: channels escape
    the rendered text as a whole).
    """

    msgid: str
    values: Mapping[str, Msg | Money | Days | Percent | When | str | int] = field(default_factory=dict)


class Tone(StrEnum):
    NORMAL = "normal"
    HEADING = "heading"
    WARNING = "warning"  # a re-prompt, a stale button: the user should notice it
    URGENT = "urgent"  # crisis help: shown before anything else


@dataclass(slots=True)
class Say:
    """A paragraph of text."""

    text: Msg
    tone: Tone = Tone.NORMAL


@dataclass(slots=True)
class Phrase:
    """Something to say to the bank (or, for staff, to the customer): shown copyable."""

    text: Msg
    title: Msg | None = None


@dataclass(slots=True)
class RankedCause:
    cause_id: str
    label: Msg
    probability: float
    reasons: tuple[Msg, ...] = ()


@dataclass(slots=True)
class Ranking:
    """The diagnosis: causes from most to least probable (shown with bars)."""

    causes: tuple[RankedCause, ...]


@dataclass(frozen=True, slots=True)
class Curve:
    """One line of the repayment chart: what is still owed after each month."""

    label: Msg
    balances: tuple[Decimal, ...]
    clears: bool  # False: the payment never clears the debt (drawn dashed)


@dataclass(frozen=True, slots=True)
class Repayment:
    """The repayment calculator's answer: its paragraphs (the table), then its chart.

    The terminal shows the paragraphs alone; Telegram adds the chart as a photo.
    """

    lines: tuple[Msg, ...]
    title: Msg
    x_axis: Msg
    y_axis: Msg
    curves: tuple[Curve, ...]


Block = Say | Phrase | Ranking | Repayment


@dataclass(slots=True)
class Option:
    """One answer offered as a button or a numbered line."""

    index: int
    label: Msg


@dataclass(slots=True)
class Question:
    """What the user is asked now. `version` goes into buttons to detect stale presses."""

    state: str
    prompt: Msg
    options: tuple[Option, ...]
    version: int
    skippable: bool = False
    # Typed option numbers pick options. Not for questions answered with a number of
    # days or an amount, where "3" means three, not the third button.
    numbered: bool = True


@dataclass(slots=True, frozen=True)
class Action:
    """Something the advisor is to do beyond replying (a state's `do:`, bot/spec/actions.py).

    `values` holds each parameter's slot value as it was when the state was entered
    (None when unanswered); `at` is how many of the turn's blocks came before it, so a
    confirmation the advisor adds (when the reminder comes) goes in the right place.
    """

    name: ActionName
    values: Mapping[str, SlotValue | None]
    at: int


@dataclass(slots=True, frozen=True)
class Turn:
    """The engine's answer to one event: what to show and the session after it.

    Frozen: a turn is built once, with every flag it needs (`dataclasses.replace` makes
    a variant, e.g. `replace(turn, stale=True)`). One per step, so the cost is small.
    """

    session: Session
    blocks: tuple[Block, ...] = ()
    question: Question | None = None
    # False when the event changed nothing (bad input, a stale button): stores skip the write.
    changed: bool = True
    # The conversation reached its end state; a new message starts over.
    finished: bool = False
    # The `milestone:` of every state this turn passed (statistics: "plan" = the plan was shown).
    milestones: tuple[str, ...] = ()
    # A button press that was not taken as an answer (stale, or forged): the channel
    # says so and takes the dead buttons away.
    stale: bool = False
    # The (flow, state) pairs this turn went through, in order (for tests and tracing).
    passed: tuple[tuple[str, str], ...] = ()
    # What the advisor must carry out with this turn's commit, in order (`do:` of the states passed).
    actions: tuple[Action, ...] = ()
