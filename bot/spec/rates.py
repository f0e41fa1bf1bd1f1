"""The repayment calculator's rates: the `calculator:` block of `dialogs/costs.yaml`, typed.

Every figure is an operator-editable estimate (sources in the YAML comments and
FACTS "Repayment calculator"); the defaults here are the same figures, so a dialogs
folder without the block still gets a working calculator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.spec.loader import MarkedMap, _Reader


def _huabei_defaults() -> dict[int, Decimal]:
    # FACTS "Huabei": about 2.5/4.5/6.5/8.8% of the amount in total for 3/6/9/12 periods.
    return {3: Decimal("0.025"), 6: Decimal("0.045"), 9: Decimal("0.065"), 12: Decimal("0.088")}


def _bill_defaults() -> dict[int, Decimal]:
    # FACTS "Bill instalments": list fees about 0.6–0.75% of the amount per period, 12 periods.
    return {12: Decimal("0.006")}


@dataclass(frozen=True)
class CalculatorRates:
    """What the calculator needs besides each product's daily rate (from `costs:`).

    days_per_month            monthly rate r = days_per_month × the daily rate
    bill_instalment_fees      credit-card bill instalment: periods → fee per period (share of the amount)
    personalised_max_months   个性化分期: the longest plan to offer (the 2022 notice caps instalments at 5 years)
    personalised_fee_per_period  its fee per period; 0 = interest-free, as is common in practice
    huabei_instalment_fees    Huabei instalment: periods → total fee (share of the amount)
    """

    days_per_month: int = 30
    bill_instalment_fees: Mapping[int, Decimal] = field(default_factory=_bill_defaults)
    personalised_max_months: int = 60
    personalised_fee_per_period: Decimal = Decimal(0)
    huabei_instalment_fees: Mapping[int, Decimal] = field(default_factory=_huabei_defaults)


_KEYS = {
    "days_per_month",
    "bill_instalment_fees",
    "personalised_max_months",
    "personalised_fee_per_period",
    "huabei_instalment_fees",
}


def read_calculator(reader: _Reader, doc: MarkedMap) -> CalculatorRates | None:
    """The `calculator:` block of a costs file, or None when the file has none.

    Problems (an unknown key, a share outside 0–1, a period count outside 1–60) are
    reported through `reader` with file:line:column like every other dialog problem.
    """
    if "calculator" not in doc:
        return None
    what = "calculator"
    block = reader.map(doc.get("calculator"), doc.value_where["calculator"], what)
    if block is None:
        return None
    reader.known_keys(block, _KEYS, what)
    defaults = CalculatorRates()
    days = _whole(reader, block, "days_per_month", defaults.days_per_month, 1, 31)
    months = _whole(reader, block, "personalised_max_months", defaults.personalised_max_months, 1, 120)
    fee = reader.number(block, "personalised_fee_per_period", what)
    if fee is not None and not 0 <= fee < 1:
        reader.problem(block.value_where["personalised_fee_per_period"], f"{what}: a fee is a share between 0 and 1")
        fee = None
    return CalculatorRates(
        days_per_month=days,
        bill_instalment_fees=_fees(reader, block, "bill_instalment_fees", defaults.bill_instalment_fees),
        personalised_max_months=months,
        personalised_fee_per_period=defaults.personalised_fee_per_period if fee is None else fee,
        huabei_instalment_fees=_fees(reader, block, "huabei_instalment_fees", defaults.huabei_instalment_fees),
    )


def _whole(reader: _Reader, block: MarkedMap, key: str, default: int, low: int, high: int) -> int:
    value = reader.number(block, key, "calculator")
    if value is None:
        return default
    if value != int(value) or not low <= value <= high:
        reader.problem(block.value_where[key], f"calculator: '{key}' must be a whole number from {low} to {high}")
        return default
    return int(value)


def _fees(reader: _Reader, block: MarkedMap, key: str, default: Mapping[int, Decimal]) -> Mapping[int, Decimal]:
    if key not in block:
        return dict(default)
    fees = reader.map(block[key], block.value_where[key], f"calculator '{key}'")
    if fees is None:
        return dict(default)
    result: dict[int, Decimal] = {}
    for periods, share in fees.items():
        at = fees.value_where.get(periods, fees.where)
        count = _as_int(periods)
        rate = _as_decimal(share)
        if count is None or not 1 <= count <= 60:
            reader.problem(at, f"calculator '{key}': {periods!r} is not a number of periods from 1 to 60")
        elif rate is None or not 0 <= rate < 1:
            reader.problem(at, f"calculator '{key}': the fee for {count} periods must be a share between 0 and 1")
        else:
            result[count] = rate
    return dict(sorted(result.items()))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None
