"""The repayment calculator against FACTS "Repayment calculator": worked examples to the cent,
the edge cases (never clears, zero, ranges, a 3,650-day overdue), the rates in costs.yaml
and the texts a person reads."""

from __future__ import annotations

import shutil
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.calculator import (
    CALCULATOR_MESSAGES,
    Calculation,
    Caveat,
    OptionKind,
    RepaymentOption,
    annualised_rate,
    calculate,
    calculation_msgs,
    chart_msgs,
    monthly_at_rate,
    months_to_clear,
    owed_now,
    proposal_phrase,
    proposed_monthly,
    smallest_clearing_payment,
)
from bot.i18n.catalog import Localizer
from bot.runtime import PROJECT_ROOT
from bot.spec.loader import SpecError, load_dialogs
from bot.spec.model import DialogSpec
from bot.spec.rates import CalculatorRates

D = Decimal
DIALOGS = PROJECT_ROOT / "dialogs"
LOCALES = PROJECT_ROOT / "locales"
RATE = D("0.015")  # 0.05% a day × 30


@cache
def spec() -> DialogSpec:
    return load_dialogs(DIALOGS)


@cache
def localizer() -> Localizer:
    return Localizer.load(LOCALES)


def run(amount: Decimal | tuple[Decimal, Decimal], monthly: Decimal, product: str = "credit_card") -> Calculation:
    return calculate(amount, monthly, product, spec().calculator, spec().costs)


def option(calc: Calculation, kind: OptionKind, periods: int | None = None) -> RepaymentOption:
    return next(o for o in calc.options if o.kind == kind and (periods is None or o.periods == periods))


def texts(calc: Calculation, locale: str) -> list[str]:
    return [localizer().text(msg, locale) for msg in calculation_msgs(calc, spec().messages)]


# -- the worked examples of FACTS, to the cent


def test_monthly_at_the_contract_rate_matches_the_worked_example() -> None:
    # ¥20,000 at 0.05%/day (r = 1.5%), ¥1,500 a month → 15 months, 14 × 1,500 + 1,481.43
    monthly = option(run(D(20000), D(1500)), OptionKind.MONTHLY)
    assert monthly.months == 15
    assert monthly.monthly_payment == D("1500.00")
    assert monthly.last_payment == D("1481.43")
    assert monthly.cost == D("2481.43")
    assert monthly.total_paid == D("22481.43")
    assert monthly.annual_rate == D("0.1800")  # 12 × 1.5%: the IRR of an amortisation is its rate
    assert monthly.balances[0] == D("20000.00") and monthly.balances[-1] == 0
    assert len(monthly.balances) == 16


def test_the_closed_form_agrees_with_the_month_by_month_count() -> None:
    assert months_to_clear(D(20000), D(1500), RATE) == 15


def test_bill_instalment_matches_the_worked_example() -> None:
    # ¥20,000 in 12 periods at 0.6% → fee ¥120 a month, ¥1,440 in all, ¥1,786.67, 13.03% a year
    bill = option(run(D(20000), D(1500)), OptionKind.BILL_INSTALMENT, 12)
    assert bill.fee_per_period == D("120.00")
    assert bill.cost == D("1440.00")
    assert bill.monthly_payment == D("1786.67")
    assert bill.total_paid == D("21440.00")
    assert bill.monthly_payment * 11 + bill.last_payment == bill.total_paid  # the last period evens out
    assert bill.annual_rate == D("0.1303")
    assert not bill.affordable  # ¥1,786.67 is more than the ¥1,500 the person can pay


def test_huabei_instalment_matches_the_worked_example() -> None:
    # Huabei ¥20,000 in 12 periods at 8.8% → fee ¥1,760, ¥1,813.33 a month, 15.86% a year
    huabei = option(run(D(20000), D(2000), "huabei"), OptionKind.HUABEI_INSTALMENT, 12)
    assert huabei.cost == D("1760.00")
    assert huabei.monthly_payment == D("1813.33")
    assert huabei.annual_rate == D("0.1586")
    assert huabei.caveat is Caveat.CHECK_IN_ALIPAY
    assert huabei.affordable


def test_personalised_instalment_over_60_months_interest_free() -> None:
    # 个性化分期 ¥20,000 over 60 months, interest-free → ¥333.33 a month
    plan = option(run(D(20000), D(300)), OptionKind.PERSONALISED)
    assert plan.periods == 60
    assert plan.monthly_payment == D("333.33")
    assert plan.cost == 0 and plan.total_paid == D("20000.00")
    assert plan.annual_rate == 0
    assert plan.caveat is Caveat.IF_BANK_AGREES
    assert not plan.affordable  # even 60 months is above ¥300 a month


def test_personalised_instalment_takes_the_fewest_months_that_fit_the_budget() -> None:
    plan = option(run(D(20000), D(1500)), OptionKind.PERSONALISED)
    assert plan.periods == 14  # 20,000 / 14 = 1,428.57 ≤ 1,500 < 20,000 / 13
    assert plan.monthly_payment == D("1428.57") and plan.affordable


# -- which options each product gets


def test_each_product_gets_only_its_own_options() -> None:
    card = [(o.kind, o.periods) for o in run(D(20000), D(1500)).options]
    assert card == [(OptionKind.MONTHLY, None), (OptionKind.BILL_INSTALMENT, 12), (OptionKind.PERSONALISED, 14)]
    huabei = [(o.kind, o.periods) for o in run(D(20000), D(1500), "huabei").options]
    assert huabei == [(OptionKind.MONTHLY, None)] + [(OptionKind.HUABEI_INSTALMENT, n) for n in (3, 6, 9, 12)]
    other = run(D(20000), D(1500), "other_loan").options
    assert [o.kind for o in other] == [OptionKind.MONTHLY]
    assert other[0].caveat is Caveat.CONTRACT_DECIDES


def test_huabei_instalment_fees_for_each_period_count() -> None:
    calc = run(D(20000), D(8000), "huabei")
    fees = {o.periods: o.cost for o in calc.options if o.kind == OptionKind.HUABEI_INSTALMENT}
    assert fees == {3: D("500.00"), 6: D("900.00"), 9: D("1300.00"), 12: D("1760.00")}


# -- edge cases


def test_a_payment_at_the_monthly_interest_never_clears_and_the_smallest_that_does_is_given() -> None:
    monthly = option(run(D(20000), D(300)), OptionKind.MONTHLY)  # 20,000 × 1.5% = ¥300 of interest
    assert not monthly.clears and monthly.months is None
    assert monthly.first_interest == D("300.00")
    assert monthly.smallest_clearing == D(508)
    # ¥508 clears within 60 months; ¥507 does not
    assert months_to_clear(D(20000), D(508), RATE) == 60
    assert months_to_clear(D(20000), D(507), RATE) == 61
    assert option(run(D(20000), D(508)), OptionKind.MONTHLY).months == 60


def test_a_payment_below_the_interest_shows_the_debt_growing() -> None:
    monthly = option(run(D(20000), D(100)), OptionKind.MONTHLY)
    assert not monthly.clears
    assert len(monthly.balances) == 61  # the balance over the longest plan, for the chart
    assert monthly.balances[-1] > monthly.balances[0]


def test_never_clears_is_said_in_both_languages() -> None:
    calc = run(D(20000), D(300))
    zh, en = "\n".join(texts(calc, "zh_CN")), "\n".join(texts(calc, "en"))
    assert "永远还不清" in zh and "¥508.00" in zh and "¥300.00" in zh
    assert "never clears" in en and "508.00" in en


def test_a_slow_plan_says_what_clears_it_within_60_months() -> None:
    calc = run(D(20000), D(310))  # ¥10 above the interest: 231 months
    monthly = option(calc, OptionKind.MONTHLY)
    assert monthly.months == 231
    assert monthly.smallest_clearing == D(508)
    assert any("60个月内还清" in line and "¥508.00" in line for line in texts(calc, "zh_CN"))


def test_zero_amount_has_nothing_to_calculate() -> None:
    calc = run(D(0), D(1500))
    assert calc.nothing_owed and calc.options == () and calc.proposed_monthly == 0
    assert texts(calc, "zh_CN") == ["已经没有需要还的钱了，所以不需要计算。"]
    assert months_to_clear(D(0), D(100), RATE) == 0
    assert smallest_clearing_payment(D(0), RATE, 60) == 0


def test_a_range_is_computed_on_its_middle_and_says_so() -> None:
    calc = run((D(10000), D(30000)), D(1500))
    assert calc.amount == D("20000.00") and calc.amount_range == (D("10000.00"), D("30000.00"))
    assert option(calc, OptionKind.MONTHLY).months == 15
    assert texts(calc, "zh_CN")[0] == "您给出的是一个范围（¥10,000.00到¥30,000.00），我按中间值¥20,000.00计算。"
    assert run((D(30000), D(10000)), D(1500)).amount == D("20000.00")  # the order does not matter


def test_a_3650_day_overdue_starts_from_what_is_owed_now() -> None:
    costs = spec().costs["credit_card"]
    owed = owed_now(D(20000), 3650, costs)
    # 20,000 × 0.05% × 3,650 = 36,500 interest; 5% of the 10% minimum for 122 cycles = 12,200
    assert owed == D("68700.00")
    calc = run(owed, D(1500))
    monthly = option(calc, OptionKind.MONTHLY)
    assert monthly.clears and monthly.months is not None and monthly.months > 60
    assert monthly.smallest_clearing is not None and monthly.smallest_clearing > D(1500)
    assert calc.proposed_monthly == D(1500)  # 68,700 / 60 = 1,145: the person's figure is enough


def test_a_negative_payment_counts_as_nothing() -> None:
    monthly = option(run(D(1000), D(-5)), OptionKind.MONTHLY)
    assert not monthly.clears and monthly.smallest_clearing == D(26)


def test_paying_everything_at_once_clears_in_one_month() -> None:
    monthly = option(run(D(800), D(5000)), OptionKind.MONTHLY)
    assert monthly.months == 1 and monthly.last_payment == D("812.00")  # a month's interest on ¥800


def test_interest_free_instalments_have_a_zero_rate_and_annualised_rate_needs_payments() -> None:
    assert annualised_rate(D(1000), [D(500), D(500)]) == 0
    assert annualised_rate(D(1000), []) is None
    assert annualised_rate(D(0), [D(10)]) is None


# -- the proposal to the bank


@pytest.mark.parametrize(
    ("amount", "can_pay", "offer", "above"),
    [
        (D(20000), D(1500), D(1500), False),
        (D(20000), D(1580), D(1500), False),  # rounded down to whole hundreds from ¥1,000
        (D(20000), D(455), D(450), False),  # whole tens below ¥1,000
        (D(20000), D(300), D(334), True),  # never below what clears it in 60 months
        (D(800), D(5000), D("800.00"), False),  # never more than the amount
        (D(0), D(500), D(0), False),
    ],
)
def test_proposed_monthly(amount: Decimal, can_pay: Decimal, offer: Decimal, above: bool) -> None:
    assert proposed_monthly(amount, can_pay, CalculatorRates()) == (offer, above)


def test_the_call_script_phrase_uses_the_proposal() -> None:
    calc = run(D(60000), D(2580))
    assert calc.proposed_monthly == D(2500)
    assert localizer().text(proposal_phrase(calc, spec().messages), "zh_CN") == "我每月可以稳定还款¥2,500.00。"
    assert "2,500.00 every month" in localizer().text(proposal_phrase(calc, spec().messages), "en")


def test_above_budget_proposal_is_explained() -> None:
    calc = run(D(20000), D(300))
    assert calc.proposal_above_budget
    assert any("银行一般很少同意" in line for line in texts(calc, "zh_CN"))


# -- what a person reads


def test_the_table_in_chinese_names_each_option_with_its_caveat() -> None:
    lines = texts(run(D(20000), D(1500)), "zh_CN")
    assert lines[0].startswith("您欠款¥20,000.00，每月能还¥1,500.00。")
    assert "按合同利率每月还款：15个月" in lines[1] and "最后一期¥1,481.43" in lines[1]
    assert "年化利率13.03%" in lines[2] and "超出您每月能还的金额" in lines[2]
    assert lines[3].startswith("个性化分期，14个月（需银行同意）")
    assert lines[4] == "协商时建议您提出的每月还款额：¥1,500.00。"


def test_huabei_table_in_english_says_to_check_alipay() -> None:
    lines = texts(run(D(20000), D(2000), "huabei"), "en")
    twelve = next(line for line in lines if line.startswith("Huabei instalment, 12 periods"))
    assert "(check the figure in Alipay)" in twelve and "annualised rate 15.86%" in twelve
    assert not any("bill instalment" in line or "Personalised" in line for line in lines)


def test_chart_texts_have_one_legend_entry_per_option() -> None:
    calc = run(D(20000), D(1500), "huabei")
    title, x_axis, y_axis, legend = chart_msgs(calc, spec().messages)
    assert localizer().text(title, "zh_CN") == "每月还剩多少欠款"
    assert localizer().text(y_axis, "zh_CN") == "剩余欠款（¥）"
    assert len(legend) == len(calc.options)
    assert localizer().text(legend[-1], "zh_CN") == "花呗分期，12期（以支付宝显示为准）"
    assert localizer().text(x_axis, "en") == "Months"


def test_every_calculator_text_is_defined_and_translated() -> None:
    messages = spec().messages
    missing = [key for key in CALCULATOR_MESSAGES if key not in messages]
    assert missing == []
    untranslated = localizer().missing([messages[key] for key in CALCULATOR_MESSAGES], "zh_CN")
    assert untranslated == []


# -- the rates in costs.yaml


def test_costs_yaml_carries_the_facts_rates() -> None:
    rates = spec().calculator
    assert rates.days_per_month == 30
    assert rates.bill_instalment_fees == {12: D("0.006")}
    assert rates.personalised_max_months == 60 and rates.personalised_fee_per_period == 0
    assert rates.huabei_instalment_fees == {3: D("0.025"), 6: D("0.045"), 9: D("0.065"), 12: D("0.088")}


def test_an_operator_can_change_a_rate(tmp_path: Path) -> None:
    folder = copy_dialogs(tmp_path)
    costs = folder / "costs.yaml"
    costs.write_text(costs.read_text(encoding="utf-8").replace("12: 0.006", "12: 0.0075"), encoding="utf-8")
    changed = load_dialogs(folder)
    calc = calculate(D(20000), D(1500), "credit_card", changed.calculator, changed.costs)
    bill = option(calc, OptionKind.BILL_INSTALMENT, 12)
    assert bill.cost == D("1800.00") and bill.annual_rate == D("0.1622")  # the top of FACTS' 13–16%


def test_a_bad_rate_is_reported_with_its_place(tmp_path: Path) -> None:
    folder = copy_dialogs(tmp_path)
    costs = folder / "costs.yaml"
    text = costs.read_text(encoding="utf-8")
    text = text.replace("    12: 0.088", "    12: 1.5").replace(
        "personalised_max_months: 60", "personalised_max_months: 0"
    )
    costs.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_dialogs(folder)
    problems = "\n".join(caught.value.problems)
    line = text.splitlines().index("    12: 1.5") + 1
    assert f"costs.yaml:{line}:" in problems and "share between 0 and 1" in problems
    assert "'personalised_max_months' must be a whole number" in problems


def test_without_a_calculator_block_the_facts_defaults_apply(tmp_path: Path) -> None:
    folder = copy_dialogs(tmp_path)
    costs = folder / "costs.yaml"
    text = costs.read_text(encoding="utf-8")
    costs.write_text(text[: text.index("\ncalculator:")] + "\n", encoding="utf-8")
    assert load_dialogs(folder).calculator == CalculatorRates()


def copy_dialogs(tmp_path: Path) -> Path:
    target = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, target, ignore=shutil.ignore_patterns("tests"))
    return target


# -- properties

amounts = st.decimals(min_value=D(0), max_value=D(5_000_000), places=2)
payments = st.decimals(min_value=D(0), max_value=D(200_000), places=2)
products = st.sampled_from(["credit_card", "huabei", "other_loan"])


@settings(max_examples=150, deadline=None)
@given(amounts, payments, products)
def test_months_are_never_negative_and_total_paid_covers_the_amount(
    amount: Decimal, payment: Decimal, product: str
) -> None:
    for choice in run(amount, payment, product).options:
        assert choice.months is None or choice.months >= 1
        if choice.clears:
            assert choice.total_paid >= amount
            assert choice.cost == choice.total_paid - amount
            assert choice.balances[-1] == 0
        else:
            assert choice.smallest_clearing is not None and choice.smallest_clearing > payment


@settings(max_examples=150, deadline=None)
@given(
    st.decimals(min_value=D(1), max_value=D(1_000_000), places=2),
    payments,
    st.decimals(min_value=D("0.01"), max_value=D(50_000), places=2),
)
def test_a_larger_payment_never_takes_longer(amount: Decimal, payment: Decimal, more: Decimal) -> None:
    slower = monthly_at_rate(amount, payment, RATE, 60)
    faster = monthly_at_rate(amount, payment + more, RATE, 60)
    if slower.clears:
        assert faster.clears and faster.months is not None and slower.months is not None
        assert faster.months <= slower.months
        assert faster.cost <= slower.cost


@settings(max_examples=100, deadline=None)
@given(st.decimals(min_value=D(1), max_value=D(2_000_000), places=2), st.integers(min_value=1, max_value=60))
def test_the_smallest_clearing_payment_is_the_smallest(amount: Decimal, months: int) -> None:
    smallest = smallest_clearing_payment(amount, RATE, months)
    needed = months_to_clear(amount, smallest, RATE)
    assert needed is not None and needed <= months
    fewer = months_to_clear(amount, smallest - 1, RATE)
    assert fewer is None or fewer > months
