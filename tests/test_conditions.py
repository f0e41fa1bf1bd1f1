"""The condition language: what operators may write, and what is refused at load."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.spec.conditions import ConditionError, parse_condition


@pytest.mark.parametrize(
    ("source", "scope", "expected"),
    [
        ("days_overdue > 90", {"days_overdue": 120}, True),
        ("days_overdue > 90", {"days_overdue": 90}, False),
        ("days_overdue >= 90 and product == 'credit_card'", {"days_overdue": 90, "product": "credit_card"}, True),
        ("product in ['huabei', 'other_loan']", {"product": "huabei"}, True),
        ("product not in ['huabei', 'other_loan']", {"product": "huabei"}, False),
        ("not income_stable", {"income_stable": False}, True),
        ("amount == none", {}, True),
        ("amount > 0", {}, False),  # unanswered is never bigger than anything
        ("amount < 0", {}, False),
        (
            "amount >= 50000 or (days_overdue > 90 and not keeps_budget)",
            {"days_overdue": 100, "keeps_budget": False},
            True,
        ),
        ('top_cause == "missed_reminder"', {"top_cause": "missed_reminder"}, True),
        ("p_x > 0.5", {"p_x": 0.51}, True),
        ("product > 5", {"product": "huabei"}, False),  # mixed types: false, not a crash
        ("income_stable == false", {"income_stable": False}, True),
        ("income_stable == false", {}, False),
    ],
)
def test_conditions_evaluate(source: str, scope: dict[str, object], expected: bool) -> None:
    assert parse_condition(source).holds(scope) is expected


def test_names_are_reported_for_validation() -> None:
    condition = parse_condition("days_overdue > 90 and product in ['a'] or not keeps_budget")
    assert condition.names == {"days_overdue", "product", "keeps_budget"}


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("days_overdue >", 14),
        ("__import__('os').system('ls')", 16),
        ("amount + 1 > 2", 7),
        ("(days > 1", 9),
        ("days > 1 days", 9),
        ("a ; b", 2),
        ("", 0),
    ],
)
def test_anything_else_is_refused_with_its_column(source: str, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(source)
    assert caught.value.column == column


@given(st.text(max_size=60))
def test_no_text_crashes_the_parser(source: str) -> None:
    try:
        condition = parse_condition(source)
    except ConditionError:
        return
    condition.holds({})  # whatever parsed must evaluate on an empty scope
