"""The repayment calculator: months to clear and total cost of each way of repaying a debt.

Pure functions on `Decimal` money (no I/O, no clock), so the engine and the channels
can call it anywhere. Formulas and worked examples: FACTS "Repayment calculator".

Conventions (documented here because the texts rely on them):
- The calculator starts from the amount owed **now**. Interest already run up while
  overdue is the caller's to add (`owed_now` does it with the cost estimate), so a
  3,650-day overdue is simply a larger starting amount.
- Repaying monthly at the contract rate: each month the balance grows by r = 30 × the
  daily rate, then the payment is made; the balance is kept exact and only the
  amounts shown are rounded to the cent (ROUND_HALF_UP), which is how the closed form
  n = −ln(1 − rB/P) / ln(1 + r) of FACTS counts.
- An instalment of n periods pays (amount + all fees) / n a period, rounded to the
  cent; the last period takes the rounding difference so the total is exact.
- Annualised rates are 12 × the monthly IRR of the actual payments (PBOC 2021 No. 3).
- An amount given as a range is computed on its middle (`Calculation.amount_range`
  says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from bot.engine.costs import estimate_cost
from bot.engine.turn import Money, Msg
from bot.spec.model import ProductCosts
from bot.spec.rates import CalculatorRates

CENT = Decimal("0.01")
YUAN = Decimal(1)
# Beyond this a "monthly" plan is not a plan: treat it as never clearing (50 years).
HORIZON_MONTHS = 600

CREDIT_CARD = "credit_card"
HUABEI = "huabei"
OTHER_LOAN = "other_loan"


class OptionKind(StrEnum):
    """The ways of repaying the calculator compares."""

    MONTHLY = "monthly_at_contract_rate"
    BILL_INSTALMENT = "bill_instalment"
    PERSONALISED = "personalised_instalment"
    HUABEI_INSTALMENT = "huabei_instalment"


class Caveat(StrEnum):
    """What the table must say next to an option's figures."""

    NONE = "none"
    IF_BANK_AGREES = "if_bank_agrees"  # 个性化分期 is negotiated, never a right
    CHECK_IN_ALIPAY = "check_in_alipay"  # Huabei fees are secondary figures; Alipay shows the real one
    CONTRACT_DECIDES = "contract_decides"  # other loans: the rate is a placeholder


@dataclass(frozen=True)
class RepaymentOption:
    """One way of repaying, with everything the table and the chart show.

    `months` is None when the payment never clears the debt; `smallest_clearing` is
    then (and also when clearing takes longer than the personalised maximum) the
    smallest whole-yuan monthly payment that clears it within that maximum.
    `balances[k]` is what is still owed after month k (`balances[0]` is the amount).
    For instalments the balance is the principal not yet repaid.
    """

    kind: OptionKind
    periods: int | None  # the instalment's number of periods; None for monthly repayment
    months: int | None
    monthly_payment: Decimal
    last_payment: Decimal
    cost: Decimal  # interest and fees
    total_paid: Decimal
    annual_rate: Decimal | None  # a share rounded to 0.01%: 0.1303 = 13.03%
    caveat: Caveat
    affordable: bool  # the regular payment fits the monthly amount the person can pay
    smallest_clearing: Decimal | None
    balances: tuple[Decimal, ...]
    first_interest: Decimal = Decimal(0)  # monthly repayment: the first month's interest

    @property
    def fee_per_period(self) -> Decimal:
        """An instalment's fees spread over its periods (¥120 for ¥20,000 at 0.6%); 0 otherwise."""
        return money(self.cost / self.periods) if self.periods else Decimal(0)

    @property
    def clears(self) -> bool:
        return self.months is not None


@dataclass(frozen=True)
class Calculation:
    """The calculator's whole answer for one amount and monthly payment."""

    amount: Decimal  # what the options were computed on (the middle of a range)
    amount_range: tuple[Decimal, Decimal] | None  # the range the person gave, if any
    monthly_payment: Decimal
    options: tuple[RepaymentOption, ...]
    proposed_monthly: Decimal  # the monthly amount to offer the bank (`proposed_monthly`)
    proposal_above_budget: bool  # the proposal had to be raised above what the person can pay
    max_months: int = 60  # the longest plan considered (the personalised maximum)

    @property
    def nothing_owed(self) -> bool:
        return self.amount <= 0


def money(value: Decimal) -> Decimal:
    """To the cent, half up."""
    return value.quantize(CENT, ROUND_HALF_UP)


def monthly_rate(daily_rate: Decimal, rates: CalculatorRates) -> Decimal:
    """r = days_per_month × the daily rate (FACTS: r = 30 × daily)."""
    return daily_rate * rates.days_per_month


def owed_now(amount: Decimal, days_overdue: int, costs: ProductCosts) -> Decimal:
    """The amount plus the estimated interest and fees of `days_overdue` (the cost estimate)."""
    return money(amount + estimate_cost(costs, amount, days_overdue).total)


def middle(low: Decimal, high: Decimal) -> Decimal:
    """The amount a range `low`–`high` is computed on."""
    return money((low + high) / 2)


# -- monthly repayment at the contract rate


def monthly_at_rate(amount: Decimal, payment: Decimal, rate: Decimal, max_months: int) -> RepaymentOption:
    """Repay `payment` a month on `amount` growing by `rate` a month, until it is cleared.

    A payment at or below the month's interest never clears: `months` is None and
    `smallest_clearing` says what would clear within `max_months`.
    """
    balance = amount
    payments: list[Decimal] = []
    balances = [money(amount)]
    while balance > 0 and len(payments) < HORIZON_MONTHS:
        grown = balance * (1 + rate)
        if payment <= grown - balance:  # at or below the interest: the balance never falls
            break
        paid = min(payment, money(grown))
        payments.append(paid)
        balance = grown - paid if paid < money(grown) else Decimal(0)
        balances.append(money(balance))
    clears = balance <= 0
    months = len(payments) if clears else None
    if not clears:  # show how the balance runs on (or grows) over the longest plan
        balance, balances = amount, [money(amount)]
        for _ in range(max_months):
            balance = max(Decimal(0), balance * (1 + rate) - payment)
            balances.append(money(balance))
    smallest = None
    if not clears or len(payments) > max_months:
        smallest = smallest_clearing_payment(amount, rate, max_months)
    total = sum(payments, Decimal(0)) if clears else Decimal(0)
    return RepaymentOption(
        kind=OptionKind.MONTHLY,
        periods=None,
        months=months,
        monthly_payment=money(payment),
        last_payment=payments[-1] if clears and payments else Decimal(0),
        cost=money(total - amount) if clears else Decimal(0),
        total_paid=money(total),
        annual_rate=annualised_rate(amount, payments) if clears else None,
        caveat=Caveat.NONE,
        affordable=True,
        smallest_clearing=smallest,
        balances=tuple(balances),
        first_interest=money(amount * rate),
    )


def months_to_clear(amount: Decimal, payment: Decimal, rate: Decimal) -> int | None:
    """FACTS' closed form n = ⌈−ln(1 − rB/P) / ln(1 + r)⌉; None when P ≤ rB (never clears)."""
    if amount <= 0:
        return 0
    if payment <= rate * amount:
        return None
    if rate == 0:
        return int((amount / payment).to_integral_value(ROUND_CEILING))
    r = float(rate)
    exact = -math.log(1 - r * float(amount) / float(payment)) / math.log1p(r)
    # float noise must not turn an exact 15.0 into 16
    return math.ceil(round(exact, 9))


def smallest_clearing_payment(amount: Decimal, rate: Decimal, months: int) -> Decimal:
    """The smallest whole-yuan monthly payment that clears `amount` at `rate` within `months`."""
    if amount <= 0:
        return Decimal(0)
    annuity = amount / months if rate == 0 else amount * rate / (1 - (1 + rate) ** -months)
    payment = annuity.to_integral_value(ROUND_CEILING)

    def clears_in_time(pay: Decimal) -> bool:
        needed = months_to_clear(amount, pay, rate)
        return needed is not None and needed <= months

    # Decimal's last digit can push an exact annuity (¥126,875.000…0003) a yuan too high,
    # and float logs can err the other way: settle on the boundary by checking both sides.
    while payment > YUAN and clears_in_time(payment - YUAN):
        payment -= YUAN
    while not clears_in_time(payment):
        payment += YUAN
    return payment


# -- instalments


def instalment(
    amount: Decimal,
    periods: int,
    total_fee_share: Decimal,
    kind: OptionKind,
    caveat: Caveat,
    budget: Decimal,
) -> RepaymentOption:
    """An instalment of `periods` equal payments of (amount + fees) / periods; the last one evens out."""
    fees = money(amount * total_fee_share)
    total = money(amount) + fees
    payment = money(total / periods)
    last = total - payment * (periods - 1)
    principal = money(amount / periods)
    balances = [money(amount)]
    for k in range(1, periods + 1):
        balances.append(max(Decimal(0), money(amount) - principal * k) if k < periods else Decimal(0))
    flows = [payment] * (periods - 1) + [last]
    return RepaymentOption(
        kind=kind,
        periods=periods,
        months=periods,
        monthly_payment=payment,
        last_payment=last,
        cost=fees,
        total_paid=total,
        annual_rate=annualised_rate(amount, flows),
        caveat=caveat,
        affordable=payment <= budget,
        smallest_clearing=None,
        balances=tuple(balances),
    )


def personalised_instalment(amount: Decimal, budget: Decimal, rates: CalculatorRates) -> RepaymentOption:
    """个性化分期: the fewest months (up to the maximum) whose payment fits `budget`.

    With fee f a period the payment is B/n + Bf, so n = ⌈B / (budget − Bf)⌉; when even
    the longest plan does not fit, the longest plan is shown (marked not affordable).
    """
    longest = rates.personalised_max_months
    fee = rates.personalised_fee_per_period
    room = budget - amount * fee
    periods = longest if room <= 0 else int((amount / room).to_integral_value(ROUND_CEILING))
    periods = max(1, min(longest, periods))
    return instalment(amount, periods, fee * periods, OptionKind.PERSONALISED, Caveat.IF_BANK_AGREES, budget)


# -- the annualised rate


def annualised_rate(amount: Decimal, payments: Sequence[Decimal]) -> Decimal | None:
    """12 × the monthly IRR i solving Σ payment_k / (1+i)^k = amount, as a share to 0.01%.

    Bisection on floats: the present value falls as i rises, so it converges on the
    one root; 0 for interest-free, None when there is nothing to compute on.
    """
    if amount <= 0 or not payments:
        return None
    flows = [float(p) for p in payments]
    target = float(amount)

    def value(i: float) -> float:
        return sum(flow / (1 + i) ** k for k, flow in enumerate(flows, start=1))

    if value(0.0) <= target:  # paying back no more than borrowed: no positive rate
        return Decimal(0).quantize(Decimal("0.0001"))
    low, high = 0.0, 1.0
    while value(high) > target:  # a monthly rate above 100% only for absurd inputs
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        if value(mid) > target:
            low = mid
        else:
            high = mid
    return Decimal(str(12 * (low + high) / 2)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


# -- the whole answer


def plan_options(
    amount: Decimal,
    monthly_payment: Decimal,
    product: str,
    rates: CalculatorRates,
    daily_rate: Decimal,
) -> list[RepaymentOption]:
    """Every option open to `product`, in the order the table shows them.

    credit card: monthly at the contract rate, each bank bill instalment, 个性化分期;
    Huabei: monthly at its daily rate, its 3/6/9/12-period instalments;
    other loans: monthly at the rate (the contract decides). Nothing for a zero amount.
    """
    if amount <= 0:
        return []
    rate = monthly_rate(daily_rate, rates)
    monthly = monthly_at_rate(amount, monthly_payment, rate, rates.personalised_max_months)
    if product == OTHER_LOAN:
        return [_with_caveat(monthly, Caveat.CONTRACT_DECIDES)]
    options = [monthly]
    if product == HUABEI:
        for periods, share in sorted(rates.huabei_instalment_fees.items()):
            options.append(
                instalment(
                    amount, periods, share, OptionKind.HUABEI_INSTALMENT, Caveat.CHECK_IN_ALIPAY, monthly_payment
                )
            )
        return options
    for periods, per_period in sorted(rates.bill_instalment_fees.items()):
        options.append(
            instalment(amount, periods, per_period * periods, OptionKind.BILL_INSTALMENT, Caveat.NONE, monthly_payment)
        )
    options.append(personalised_instalment(amount, monthly_payment, rates))
    return options


def proposed_monthly(amount: Decimal, monthly_payment: Decimal, rates: CalculatorRates) -> tuple[Decimal, bool]:
    """The monthly amount to offer the bank, and whether it is above what the person can pay.

    The rule: what the person said they can pay, rounded down to a figure a bank
    hears as considered (whole ¥100 from ¥1,000, whole ¥10 below), so the offer
    leaves a little room; never less than the smallest whole-yuan payment that clears
    the amount within the personalised maximum (60 months) at its fee, because a bank
    will not agree to less; never more than the amount itself.
    """
    if amount <= 0:
        return Decimal(0), False
    step = Decimal(100) if monthly_payment >= 1000 else Decimal(10)
    offer = (monthly_payment / step).to_integral_value(ROUND_FLOOR) * step
    months = rates.personalised_max_months
    floor = (amount / months + amount * rates.personalised_fee_per_period).to_integral_value(ROUND_CEILING)
    above_budget = floor > monthly_payment
    offer = max(offer, floor)
    return min(offer, money(amount)), above_budget


def calculate(
    amount: Decimal | tuple[Decimal, Decimal],
    monthly_payment: Decimal,
    product: str,
    rates: CalculatorRates,
    costs: Mapping[str, ProductCosts],
) -> Calculation:
    """The calculator's answer: `amount` owed now (or a low–high range), what the person can pay a month.

    `costs` gives each product's daily rate (the `costs:` block); an unknown product
    is computed as another loan.
    """
    amount_range = None
    if isinstance(amount, tuple):
        low, high = sorted(amount)
        amount_range = (money(low), money(high))
        amount = middle(low, high)
    amount = money(max(Decimal(0), amount))
    payment = money(max(Decimal(0), monthly_payment))
    if product not in (CREDIT_CARD, HUABEI):
        product = OTHER_LOAN
    daily = _daily_rate(costs, product)
    options = plan_options(amount, payment, product, rates, daily)
    proposal, above = proposed_monthly(amount, payment, rates)
    return Calculation(amount, amount_range, payment, tuple(options), proposal, above, rates.personalised_max_months)


def _daily_rate(costs: Mapping[str, ProductCosts], product: str) -> Decimal:
    found = costs.get(product) or costs.get(OTHER_LOAN) or costs.get(CREDIT_CARD)
    # FACTS: about 0.05% a day is the common level when no rate is configured at all
    return found.daily_interest if found else Decimal("0.0005")


def _with_caveat(option: RepaymentOption, caveat: Caveat) -> RepaymentOption:
    return replace(option, caveat=caveat)


# -- the texts (keys of dialogs/calculator.yaml `messages:`; the channels translate)

CALCULATOR_MESSAGES = (
    "calc_title",
    "calc_ask_amount",
    "calc_ask_monthly",
    "calc_nothing_owed",
    "calc_range_note",
    "calc_intro",
    "calc_option_monthly",
    "calc_option_bill",
    "calc_option_personalised",
    "calc_option_huabei",
    "calc_option_with_note",
    "calc_if_bank_agrees",
    "calc_check_alipay",
    "calc_contract_decides",
    "calc_over_budget",
    "calc_row",
    "calc_never_clears",
    "calc_too_slow",
    "calc_proposal",
    "calc_proposal_phrase",
    "calc_proposal_above_budget",
    "calc_col_option",
    "calc_col_months",
    "calc_col_monthly",
    "calc_col_cost",
    "calc_col_total",
    "calc_col_rate",
    "calc_chart_title",
    "calc_chart_x",
    "calc_chart_y",
)

_OPTION_NAMES = {
    OptionKind.MONTHLY: "calc_option_monthly",
    OptionKind.BILL_INSTALMENT: "calc_option_bill",
    OptionKind.PERSONALISED: "calc_option_personalised",
    OptionKind.HUABEI_INSTALMENT: "calc_option_huabei",
}
_CAVEATS = {
    Caveat.IF_BANK_AGREES: "calc_if_bank_agrees",
    Caveat.CHECK_IN_ALIPAY: "calc_check_alipay",
    Caveat.CONTRACT_DECIDES: "calc_contract_decides",
}


def percent_text(share: Decimal | None) -> str:
    """0.1303 → "13.03%" (the same in both languages); a dash when there is no rate."""
    return "—" if share is None else f"{share * 100:.2f}%"


def option_name(option: RepaymentOption, messages: Mapping[str, str], budget_note: bool = True) -> Msg:
    """The option's name with its caveat: "Huabei instalment, 12 periods (check the figure in Alipay)".

    With `budget_note`, an instalment above the monthly budget says so as well.
    """
    name = Msg(messages[_OPTION_NAMES[option.kind]], {"periods": option.periods or 0})
    notes = [Msg(messages[_CAVEATS[option.caveat]])] if option.caveat in _CAVEATS else []
    if budget_note and option.clears and not option.affordable:
        notes.append(Msg(messages["calc_over_budget"]))
    for note in notes:
        name = Msg(messages["calc_option_with_note"], {"option": name, "note": note})
    return name


def option_msg(option: RepaymentOption, calc: Calculation, messages: Mapping[str, str]) -> Msg:
    """One option as a sentence: its months and costs, or why it never clears and what would."""
    if not option.clears:
        return Msg(
            messages["calc_never_clears"],
            {
                "option": option_name(option, messages),
                "payment": Money(calc.monthly_payment),
                "interest": Money(option.first_interest),
                "max_months": calc.max_months,
                "minimum": Money(option.smallest_clearing or Decimal(0)),
            },
        )
    return Msg(
        messages["calc_row"],
        {
            "option": option_name(option, messages),
            "months": option.months or 0,
            "payment": Money(option.monthly_payment),
            "last": Money(option.last_payment),
            "cost": Money(option.cost),
            "total": Money(option.total_paid),
            "rate": percent_text(option.annual_rate),
        },
    )


def calculation_msgs(calc: Calculation, messages: Mapping[str, str]) -> list[Msg]:
    """The calculator's answer as paragraphs, in order: the range note, the amounts, one
    per option (with a "too slow" note where clearing takes over `calc.max_months`), the
    proposal. The terminal prints them; Telegram sends them with the chart."""
    if calc.nothing_owed:
        return [Msg(messages["calc_nothing_owed"])]
    result = []
    if calc.amount_range:
        low, high = calc.amount_range
        result.append(
            Msg(messages["calc_range_note"], {"low": Money(low), "high": Money(high), "amount": Money(calc.amount)})
        )
    result.append(Msg(messages["calc_intro"], {"amount": Money(calc.amount), "payment": Money(calc.monthly_payment)}))
    for option in calc.options:
        result.append(option_msg(option, calc, messages))
        if option.clears and option.smallest_clearing is not None:
            result.append(
                Msg(
                    messages["calc_too_slow"],
                    {"max_months": calc.max_months, "minimum": Money(option.smallest_clearing)},
                )
            )
    result.append(proposal_msg(calc, messages))
    if calc.proposal_above_budget:
        result.append(Msg(messages["calc_proposal_above_budget"], {"max_months": calc.max_months}))
    return result


def proposal_msg(calc: Calculation, messages: Mapping[str, str]) -> Msg:
    """The proposal as a sentence: "The monthly amount to propose when you negotiate: ¥1,500.00."."""
    return Msg(messages["calc_proposal"], {"proposal": Money(calc.proposed_monthly)})


def proposal_phrase(calc: Calculation, messages: Mapping[str, str]) -> Msg:
    """The call script's sentence: "I can steadily repay ¥1,500.00 every month." (我每月可以稳定还款…)."""
    return Msg(messages["calc_proposal_phrase"], {"proposal": Money(calc.proposed_monthly)})


def chart_msgs(calc: Calculation, messages: Mapping[str, str]) -> tuple[Msg, Msg, Msg, tuple[Msg, ...]]:
    """The chart's title, x axis, y axis and one legend text per option, to translate
    and pass to `bot.channels.chart.balance_chart` as its `ChartLabels`."""
    legend = tuple(option_name(option, messages, budget_note=False) for option in calc.options)
    return Msg(messages["calc_chart_title"]), Msg(messages["calc_chart_x"]), Msg(messages["calc_chart_y"]), legend
