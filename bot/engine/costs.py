"""The cost estimate shown under "know your numbers": interest and late-payment fees so far.

An estimate from operator-editable rates, never a bank's statement: the texts around
it say so. Simple interest on the overdue amount for each day; a late-payment fee
(违约金) as a share of the unpaid minimum payment, once per missed billing cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bot.spec.model import CostInputs, ProductCosts

CENT = Decimal("0.01")


@dataclass(slots=True)
class CostEstimate:
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.interest + self.fee


def estimate_cost(rates: ProductCosts, amount: Decimal, days: int) -> CostEstimate:
    """Cost of `amount` being `days` overdue under `rates`; zero for zero days."""
    if days <= 0 or amount <= 0:
        return CostEstimate(Decimal(0).quantize(CENT), Decimal(0).quantize(CENT))
    interest = amount * rates.daily_interest * days
    cycles = -(-days // rates.cycle_days)  # a fee for every cycle begun
    fee = amount * rates.minimum_share * rates.late_fee_share * cycles
    return CostEstimate(interest.quantize(CENT, ROUND_HALF_UP), fee.quantize(CENT, ROUND_HALF_UP))


def estimate_for(
    rates: Mapping[str, ProductCosts], needs: CostInputs | None, slots: Mapping[str, object]
) -> CostEstimate | None:
    """The estimate for a conversation's answers, or None when an input is not known.

    `needs` says which slots hold the product, the amount and the days (costs.yaml);
    the loader checked that they exist with the right types.
    """
    if needs is None:
        return None
    product, amount, days = slots.get(needs.product), slots.get(needs.amount), slots.get(needs.days)
    chosen = rates.get(str(product)) or (rates.get(needs.default_product) if needs.default_product else None)
    if chosen is None or isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    if isinstance(days, bool) or not isinstance(days, int):
        return None
    return estimate_cost(chosen, Decimal(str(amount)), days)
