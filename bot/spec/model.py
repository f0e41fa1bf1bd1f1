"""The dialog spec: what operators write in YAML, as typed, validated data.

Every text here is an English msgid; channels translate it at render time.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from bot.spec.conditions import Condition
from bot.spec.rates import CalculatorRates

if TYPE_CHECKING:
    from bot.spec.actions import ActionSpec


@lru_cache(maxsize=4096)
def placeholders(text: str) -> frozenset[str]:
    """The `{names}` a text uses; raises ValueError for a malformed one (`{oops`)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@dataclass(frozen=True)
class Where:
    """A place in a YAML file, 1-based, for error messages and the Babel extractor."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SlotType(StrEnum):
    CHOICE = "choice"
    BOOL = "bool"
    DAYS = "days"
    MONEY = "money"
    STORY = "story"
    # A day of the month, 1–31 ("15", "15号", "十五号", "the 15th", "月底"): a repayment day.
    DAY_OF_MONTH = "day_of_month"


@dataclass(frozen=True)
class Slot:
    """Something the conversation learns about the user, with how to parse it."""

    name: str
    type: SlotType
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    invalid: str | None = None  # an operator's own re-prompt, overriding the type's default


ScalarValue = str | int | float | bool


@dataclass(frozen=True)
class Option:
    label: str
    value: ScalarValue
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Text:
    """A paragraph, shown only when `when` holds (always when it is None)."""

    text: str
    when: Condition | None = None


@dataclass(frozen=True)
class PhraseSpec:
    text: str
    title: str | None = None
    when: Condition | None = None


@dataclass(frozen=True)
class Branch:
    """One way on from a state: to `target` when `when` holds. `@flow` names another flow."""

    target: str
    when: Condition | None
    where: Where


@dataclass(frozen=True)
class State:
    name: str
    where: Where
    say: tuple[Text, ...] = ()
    ask: str | None = None
    slot: str | None = None
    options: tuple[Option, ...] = ()
    skippable: bool = False
    when: Condition | None = None
    show_ranking: bool = False
    show_calculation: bool = False  # the repayment calculator's table and chart
    # Asked every time it is entered, even when its slot already has an answer (menus).
    repeat: bool = False
    # A point the statistics count when a conversation passes it (`milestone: plan`).
    milestone: str | None = None
    phrases: tuple[PhraseSpec, ...] = ()
    branches: tuple[Branch, ...] = ()
    end: bool = False
    # What the advisor does when the state is entered (`do:`; bot/spec/actions.py).
    actions: tuple[ActionSpec, ...] = ()

    @property
    def is_question(self) -> bool:
        return self.ask is not None


@dataclass(frozen=True)
class Flow:
    name: str
    title: str
    start: str
    slots: dict[str, Slot]
    states: dict[str, State]
    where: Where


@dataclass(frozen=True)
class Evidence:
    """Something that makes a cause more (ratio > 1) or less (ratio < 1) likely."""

    key: str  # "<cause id>/<index>": what a story slot keeps instead of the user's words
    ratio: float
    reason: str | None = None
    when: Condition | None = None
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by language: zh, en
    fills: dict[str, ScalarValue] = field(default_factory=dict)
    where: Where | None = None


@dataclass(frozen=True)
class Cause:
    id: str
    label: str
    prior: float
    evidence: tuple[Evidence, ...] = ()
    # Stories for the text classifier, by language (dialogs/examples/<cause id>.yaml).
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductCosts:
    """Rates for the cost estimate of one product (operator-editable estimates)."""

    daily_interest: Decimal
    late_fee_share: Decimal = Decimal(0)
    minimum_share: Decimal = Decimal(0)
    cycle_days: int = 30


@dataclass(frozen=True)
class CostInputs:
    """Which slots the cost estimate reads (`needs:` in costs.yaml), checked at load.

    `default_product` names the rates used for a product without its own.
    """

    product: str
    amount: str
    days: str
    where: Where
    default_product: str | None = None
    # What the person can repay a month (the repayment calculator's input), if asked.
    monthly: str | None = None


@dataclass(frozen=True)
class Crisis:
    keywords: dict[str, tuple[str, ...]]
    hotlines: dict[str, str]
    # Examples for the crisis classifier (dialogs/crisis_examples.yaml): "crisis" and
    # "not_crisis", each by language.
    examples: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReminderSettings:
    """settings.yaml `reminders:`: where reminders and check-ins enter the dialogs, and the
    defaults of what a person does not choose (bot/reminders carries them out)."""

    # Where `/remind` leads, and where a check-in takes the conversation ("flow.state").
    remind_state: tuple[str, Where] | None = None
    checkin_state: tuple[str, Where] | None = None
    # The slot holding the person's time zone (an IANA name), and the zone when it is unset.
    zone_slot: str = "time_zone"
    time_zone: str = "Asia/Shanghai"
    days_before: int = 3
    time: str = "09:00"
    # "Shall I check in with you in N days?"
    checkin_days: int = 3
    # A check-in still unanswered after this many days counts as "no answer".
    checkin_answer_days: int = 7
    where: Where | None = None


@dataclass(frozen=True)
class DialogSpec:
    """Everything loaded from a dialogs folder."""

    flows: dict[str, Flow]
    causes: tuple[Cause, ...]
    costs: dict[str, ProductCosts]
    messages: dict[str, str]
    entry_flow: str
    crisis: Crisis
    # Every translatable text and where it was written, for the translation check.
    texts: tuple[tuple[str, Where], ...] = ()
    # What the cost estimate reads; None when costs.yaml does not say (then no estimate).
    cost_inputs: CostInputs | None = None
    # The repayment calculator's rates (costs.yaml `calculator:`); FACTS defaults without it.
    calculator: CalculatorRates = field(default_factory=CalculatorRates)
    # Words that skip a skippable question (settings.yaml `skip_words`), in lower case.
    skip_words: frozenset[str] = frozenset()
    # Where `/calculator` enters ("flow.state", settings.yaml), and where that was written.
    calculator_state: tuple[str, Where] | None = None
    # Reminders and check-ins (settings.yaml `reminders:`); defaults without it.
    reminders: ReminderSettings = field(default_factory=ReminderSettings)

    def cause(self, cause_id: str) -> Cause:
        return next(cause for cause in self.causes if cause.id == cause_id)
