"""The cost estimate under "know your numbers", for both products and the edges."""

from __future__ import annotations

from decimal import Decimal

from bot.engine.costs import estimate_cost
from bot.engine.engine import Engine
from bot.engine.session import Session


def test_credit_card_interest_and_late_fee(engine: Engine) -> None:
    rates = engine.spec.costs["credit_card"]
    cost = estimate_cost(rates, Decimal(20000), 45)
    # 20,000 × daily rate × 45 days; fees once per cycle begun (2 cycles for 45 days)
    assert cost.interest == (Decimal(20000) * rates.daily_interest * 45).quantize(Decimal("0.01"))
    assert cost.fee == (Decimal(20000) * rates.minimum_share * rates.late_fee_share * 2).quantize(Decimal("0.01"))
    assert cost.total == cost.interest + cost.fee
    assert cost.interest == Decimal("450.00")  # at the shipped 0.05% a day


def test_huabei_charges_a_daily_overdue_fee(engine: Engine) -> None:
    cost = estimate_cost(engine.spec.costs["huabei"], Decimal(8000), 30)
    assert cost.total == Decimal("120.00")  # 8,000 × 0.05% × 30


def test_zero_days_costs_nothing(engine: Engine) -> None:
    assert estimate_cost(engine.spec.costs["credit_card"], Decimal(20000), 0).total == 0


def test_huge_amounts_stay_exact(engine: Engine) -> None:
    cost = estimate_cost(engine.spec.costs["huabei"], Decimal(100_000_000), 3650)
    assert cost.total == Decimal("182500000.00")


def test_unknown_amount_gives_no_estimate_and_the_plan_says_so(engine: Engine) -> None:
    session = Session(
        flow="cardholder", state="numbers", locale="en", slots={"product": "credit_card", "days_overdue": 40}
    )
    derived = engine.derived(session.slots)
    assert "cost_total" not in derived
    known = Session(
        flow="cardholder",
        state="numbers",
        locale="en",
        slots={"product": "credit_card", "days_overdue": 40, "amount": 10000},
    )
    assert engine.derived(known.slots)["cost_total"] > 0
