"""The cost estimate under "know your numbers", for both products and the edges."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from bot.engine.costs import estimate_cost
from bot.engine.engine import Engine
from bot.engine.session import Session
from bot.problems import ProblemsError
from bot.spec.loader import SpecError, load_dialogs


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


def _rename(folder: Path, files: tuple[str, ...], old: str, new: str) -> None:
    for name in files:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")


def test_renaming_a_slot_the_estimate_needs_fails_at_costs_yaml(dialogs_copy: Path) -> None:
    # An operator renames the slot in the flows but not in costs.yaml: the estimate
    # would silently vanish from every plan, so loading refuses and says where.
    _rename(dialogs_copy, ("cardholder.yaml", "staff.yaml"), "days_overdue", "overdue_days")
    needs_line = next(
        n
        for n, line in enumerate((dialogs_copy / "costs.yaml").read_text(encoding="utf-8").splitlines(), 1)
        if line.startswith("needs:")
    )
    with pytest.raises(SpecError) as caught:
        load_dialogs(dialogs_copy)
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert re.match(rf".*costs\.yaml:{needs_line}:8: the cost estimate needs the slot 'days_overdue' \(days\)", problem)
    assert "overdue_days" in problem  # the declared slots are listed, so the fix is obvious


def test_the_estimate_follows_a_slot_renamed_everywhere(dialogs_copy: Path) -> None:
    _rename(dialogs_copy, ("cardholder.yaml", "staff.yaml", "costs.yaml"), "days_overdue", "overdue_days")
    engine = Engine(load_dialogs(dialogs_copy))
    derived = engine.derived({"product": "credit_card", "amount": 20000, "overdue_days": 45})
    assert derived["cost_interest"] == Decimal("450.00")


def test_a_slot_of_the_wrong_type_is_refused(dialogs_copy: Path) -> None:
    _rename(dialogs_copy, ("costs.yaml",), "days: days_overdue", "days: amount")
    with pytest.raises(SpecError) as caught:
        load_dialogs(dialogs_copy)
    assert any("days slot 'amount' must be of type days" in p for p in caught.value.problems)


def test_a_product_without_rates_uses_the_default_product(engine: Engine) -> None:
    derived = engine.derived({"product": "pawn_shop", "amount": 8000, "days_overdue": 30})
    assert derived["cost_total"] == Decimal("120.00")  # other_loan's 0.05% a day, no fee


def test_spec_errors_are_the_one_located_problems_error() -> None:
    assert issubclass(SpecError, ProblemsError)
