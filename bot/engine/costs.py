"""The cost estimate shown under "know your numbers": interest and late-payment fees so far.

An estimate from operator-editable rates, never a bank's statement: the texts around
it say so. Simple interest on the overdue amount for each day; a late-payment fee
(违约金) as a share of the unpaid minimum payment, once per missed billing cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bot.spec.model import ProductCosts

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
