"""Values a condition or a text may read besides the slots: the one registry.

Each value is written once here, with what it means, how it is computed and how a
user sees it. The engine computes them (`DerivedValues.compute`), texts show them
(`DerivedValues.show`), and validation accepts exactly these names
(`condition_names`, `text_names`), so a name cannot work in one place and not another.

| name | computed from | shown as |
|------|---------------|----------|
| `top_cause`, `second_cause` | the diagnosis ranking | the cause's label (its id in conditions) |
| `top_reason` | the top cause's strongest evidence | that evidence's reason |
| `p_<cause id>` | the ranking | a percentage (a share 0–1 in conditions) |
| `cost_interest`, `cost_fee`, `cost_total` | the slots named in costs.yaml `needs:` | money |
| `proposed_monthly` | the calculator: the amount and `needs: monthly` in costs.yaml | money |
| `hotline` (texts only) | settings.yaml crisis hotlines | the user's language's hotline |
| `checkin_days` | settings.yaml `reminders: checkin_days` | a number of days |
| `reminder_zone` | the `reminders: zone_slot` slot, else `reminders: time_zone` | the option's label, or the name |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.engine.calculator import Calculation, calculate
from bot.engine.costs import estimate_for
from bot.engine.diagnosis import Assessment, Diagnoser, story_keys
from bot.engine.session import range_keys
from bot.engine.turn import Days, Money, Msg, Percent, When
from bot.spec.model import DialogSpec

# What a placeholder is filled with.
Shown = Msg | Money | Days | Percent | When | str | int
# The ranking itself, kept beside the values it feeds (for `show: ranking`); not a name
# operators can write.
RANKING = "_ranking"
# The repayment calculator's whole answer (for `show: calculation`), likewise.
CALCULATION = "_calculation"


@dataclass(frozen=True, slots=True)
class DerivedValue:
    """One name: what it means, and how a user sees its value (`show(value, locale)`)."""

    name: str
    meaning: str
    show: Callable[[Any, str], Shown | None]
    in_conditions: bool = True


def _registry(spec: DialogSpec) -> Iterator[DerivedValue]:
    def cause_label(value: Any, locale: str) -> Shown | None:
        return Msg(spec.cause(value).label) if value is not None else None

    def reason(value: Any, locale: str) -> Shown | None:
        return Msg(value) if value is not None else None

    def percent(value: Any, locale: str) -> Shown | None:
        return Percent(float(value)) if value is not None else None

    def money(value: Any, locale: str) -> Shown | None:
        return Money(Decimal(value)) if value is not None else None

    def hotline(value: Any, locale: str) -> Shown | None:
        hotlines = spec.crisis.hotlines
        return hotlines.get(locale) or next(iter(hotlines.values()), None)

    yield DerivedValue("top_cause", "the most probable cause", cause_label)
    yield DerivedValue("second_cause", "the second most probable cause", cause_label)
    yield DerivedValue("top_reason", "why the top cause was chosen", reason)
    for cause in spec.causes:
        yield DerivedValue(f"p_{cause.id}", f"the probability of '{cause.id}', 0–1", percent)
    yield DerivedValue("cost_interest", "estimated interest so far", money)
    yield DerivedValue("cost_fee", "estimated late-payment fees so far", money)
    yield DerivedValue("cost_total", "estimated cost of being overdue so far", money)
    yield DerivedValue("proposed_monthly", "the monthly amount to offer the bank (calculator)", money)
    yield DerivedValue("hotline", "the crisis hotline for the user's language", hotline, in_conditions=False)

    def days(value: Any, locale: str) -> Shown | None:
        return Days(int(value)) if value is not None else None

    zone_labels = {
        str(option.value): option.label
        for flow in spec.flows.values()
        for state in flow.states.values()
        if state.slot == spec.reminders.zone_slot
        for option in state.options
    }

    def zone_name(value: Any, locale: str) -> Shown | None:
        if value is None:
            return None
        label = zone_labels.get(str(value))
        return Msg(label) if label else str(value)

    yield DerivedValue("checkin_days", "in how many days the advisor checks in (settings.yaml)", days)
    yield DerivedValue("reminder_zone", "the person's time zone for reminders", zone_name)


def condition_names(spec: DialogSpec) -> set[str]:
    """The derived names a condition may use (for validation)."""
    return {value.name for value in _registry(spec) if value.in_conditions}


def text_names(spec: DialogSpec) -> set[str]:
    """The derived names a text may use as `{placeholder}` (for validation)."""
    return {value.name for value in _registry(spec)}


class DerivedValues:
    """Computes and shows the derived values of one spec."""

    def __init__(self, spec: DialogSpec, diagnoser: Diagnoser) -> None:
        self.spec = spec
        self.diagnoser = diagnoser
        self.values = {value.name: value for value in _registry(spec)}
        self.names = frozenset(self.values)

    def compute(self, slots: Mapping[str, Any]) -> dict[str, Any]:
        """Every value for these answers (a missing one is absent, which conditions read as none)."""
        ranking: list[Assessment] = self.diagnoser.rank(slots, story_keys(slots))
        values: dict[str, Any] = {f"p_{a.cause.id}": a.probability for a in ranking}
        values[RANKING] = ranking
        values["top_cause"] = ranking[0].cause.id if ranking else None
        values["second_cause"] = ranking[1].cause.id if len(ranking) > 1 else None
        top_reasons = [e.reason for e in ranking[0].evidence if e.reason and e.ratio > 1] if ranking else []
        values["top_reason"] = top_reasons[0] if top_reasons else None
        cost = estimate_for(self.spec.costs, self.spec.cost_inputs, slots)
        if cost is not None:
            values.update(cost_interest=cost.interest, cost_fee=cost.fee, cost_total=cost.total)
        reminders = self.spec.reminders
        values["checkin_days"] = reminders.checkin_days
        values["reminder_zone"] = slots.get(reminders.zone_slot) or reminders.time_zone
        calculation = self.calculation(slots)
        if calculation is not None:
            values[CALCULATION] = calculation
            if not calculation.nothing_owed:
                values["proposed_monthly"] = calculation.proposed_monthly
        return values

    def calculation(self, slots: Mapping[str, Any]) -> Calculation | None:
        """The repayment calculator for these answers, once the amount and the monthly payment are known.

        A typed range of the amount ("2–3万") is computed on its middle, and said so.
        """
        needs = self.spec.cost_inputs
        if needs is None or needs.monthly is None:
            return None
        amount, monthly = slots.get(needs.amount), slots.get(needs.monthly)
        if not _number(amount) or not _number(monthly):
            return None
        low, high = (slots.get(end) for end in range_keys(needs.amount))
        owed: Decimal | tuple[Decimal, Decimal] = Decimal(str(amount))
        if _number(low) and _number(high):
            owed = (Decimal(str(low)), Decimal(str(high)))
        product = str(slots.get(needs.product) or needs.default_product or "")
        return calculate(owed, Decimal(str(monthly)), product, self.spec.calculator, self.spec.costs)

    def show(self, name: str, value: Any, locale: str) -> Shown | None:
        """`value` of derived `name` as a user should see it."""
        return self.values[name].show(value, locale)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
