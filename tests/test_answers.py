"""Typed answers: days, money and yes/no as people actually write them, in zh and en."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engine.answers import parse_bool, parse_days, parse_money

DAYS = [
    ("45", 45),
    ("45天", 45),
    ("45 天", 45),
    ("45日", 45),
    ("45d", 45),
    ("0", 0),
    ("今天", 0),
    ("today", 0),
    ("两个月", 60),
    ("2 months", 60),
    ("two months", 60),
    ("about 2 months", 60),
    ("约两个月", 60),
    ("差不多三个月", 90),
    ("半年", 180),
    ("half a year", 180),
    ("一年", 365),
    ("a year", 365),
    ("一年半", 545),
    ("1.5年", 545),
    ("一个半月", 45),
    ("1.5个月", 45),
    ("a month and a half", 45),
    ("2 and a half months", 75),
    ("半个月", 15),
    ("半月", 15),
    ("half a month", 15),
    ("3 weeks", 21),
    ("three weeks", 21),
    ("三周", 21),
    ("一周", 7),
    ("a week", 7),
    ("一个星期", 7),
    ("两个礼拜", 14),
    ("2w", 14),
    ("a couple of weeks", 14),
    ("about 6 weeks", 42),
    ("一周半", 11),  # 10.5 rounds half up
    ("十天", 10),
    ("10 days", 10),
    ("1 day", 1),
    ("四十五天", 45),
    ("一百天", 100),
    ("twenty-five days", 25),
    ("twenty five days", 25),
    ("大概45天", 45),
    ("45天左右", 45),
    ("已经逾期45天了", 45),
    ("45 days overdue", 45),
    ("over 90 days", 90),
    ("more than 90 days", 90),
    ("90+ days", 90),
    ("3个多月", 90),
    ("两个多月", 60),
    ("一年多", 365),
    ("十几天", 10),
    ("二十多天", 20),
    ("2 months or so", 60),
    ("approx. 2 months", 60),
    ("１５天", 15),  # full-width digits
    ("兩個月", 60),  # traditional characters
    ("  45天。 ", 45),
    ("45 DAYS!", 45),
]

MONEY = [
    ("15000", Decimal(15000)),
    ("12.5", Decimal("12.5")),
    ("0", Decimal(0)),
    ("1.5万", Decimal(15000)),
    ("一点五万", Decimal(15000)),
    ("10万", Decimal(100000)),
    ("100万", Decimal(1000000)),
    ("两万三", Decimal(23000)),
    ("三千五", Decimal(3500)),
    ("一万五", Decimal(15000)),
    ("1万5", Decimal(15000)),
    ("两千", Decimal(2000)),
    ("两百万", Decimal(2000000)),
    ("5千", Decimal(5000)),
    ("3k", Decimal(3000)),
    ("3K", Decimal(3000)),
    ("3.5k", Decimal(3500)),
    ("1.2w", Decimal(12000)),
    ("1.2W", Decimal(12000)),
    ("¥8,000", Decimal(8000)),
    ("￥8000", Decimal(8000)),
    ("¥1.2万", Decimal(12000)),
    ("15,000 yuan", Decimal(15000)),
    ("15000元", Decimal(15000)),
    ("8000块", Decimal(8000)),
    ("8000块钱", Decimal(8000)),
    ("RMB 5000", Decimal(5000)),
    ("CNY 5,000.50", Decimal("5000.50")),
    ("about 20000", Decimal(20000)),
    ("大概两万", Decimal(20000)),
    ("两万多", Decimal(20000)),
    ("1万元左右", Decimal(10000)),
    ("欠了两万三", Decimal(23000)),
    ("10万+", Decimal(100000)),
    ("1.5 million", Decimal(1500000)),
    ("five thousand", Decimal(5000)),
    ("a thousand", Decimal(1000)),
    ("１５０００", Decimal(15000)),
    ("兩萬三", Decimal(23000)),
]

YES = [
    "是",
    "是的",
    "对",
    "对的",
    "有",
    "嗯",
    "嗯嗯嗯",
    "好",
    "好的",
    "没错",
    "yes",
    "y",
    "yeah",
    "yep",
    "sure",
    "correct",
    "true",
    "ok",
    "OK",
    "Yes!",
    "是。",
    "是的！",
    " 对 ",
    "YES?",
]
NO = [
    "不是",
    "不",
    "否",
    "没有",
    "没",
    "不对",
    "无",
    "no",
    "n",
    "nope",
    "nah",
    "not really",
    "false",
    "never",
    "No.",
    "没有。",
    "NOPE!",
    "不是的",
    "没有了",
    "沒有",
    "I don’t",
]

NOT_DAYS = [
    "",
    "   ",
    "abc",
    "很多",
    "-5",
    "负五天",
    "昨天买的",
    "a",
    "两个",
    "一个半",
    "半",
    "几天",
    "a few days",
    "3-4个月",
    "45元",
    "45 and 60",
    "1,5000",
    "天",
    "months",
]
NOT_MONEY = [
    "",
    "abc",
    "很多",
    "-5",
    "负五千",
    "昨天买的",
    "a",
    "$500",
    "500美元",
    "1,5000",
    "5-6万",
    "45天",
    "万",
    "k",
    "一点",
]
NOT_BOOL = ["", "maybe", "不知道", "也许", "1", "0", "yes and no", "是不是", "hmm", "不一定"]


@pytest.mark.parametrize(("text", "expected"), DAYS)
def test_days(text: str, expected: int) -> None:
    assert parse_days(text) == expected


@pytest.mark.parametrize(("text", "expected"), MONEY)
def test_money(text: str, expected: Decimal) -> None:
    parsed = parse_money(text)
    assert isinstance(parsed, Decimal)
    assert parsed == expected


def test_money_keeps_a_plain_form() -> None:
    # printed to the user as it is: 15000, not 1.5E+4
    assert str(parse_money("1.5万")) == "15000"


@pytest.mark.parametrize("text", YES)
def test_yes(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", NO)
def test_no(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", NOT_DAYS)
def test_not_days(text: str) -> None:
    assert parse_days(text) is None


@pytest.mark.parametrize("text", NOT_MONEY)
def test_not_money(text: str) -> None:
    assert parse_money(text) is None


@pytest.mark.parametrize("text", NOT_BOOL)
def test_not_bool(text: str) -> None:
    assert parse_bool(text) is None


def test_big_values_are_returned_for_the_engine_to_range_check() -> None:
    assert parse_days("100000") == 100000
    assert parse_money("9" * 60) == Decimal("9" * 60)
    assert parse_money("9" * 60 + "亿") == Decimal("9" * 60 + "0" * 8)


def test_too_long_is_not_understood() -> None:
    assert parse_days("4" * 500) is None
    assert parse_money("4" * 500) is None


def test_exact_under_a_hostile_decimal_context() -> None:
    # The engine's thread may run with a small precision or trapped signals.
    traps = [
        decimal.Inexact,
        decimal.Rounded,
        decimal.InvalidOperation,
        decimal.Overflow,
        decimal.Clamped,
        decimal.FloatOperation,
    ]
    with decimal.localcontext(decimal.Context(prec=3, traps=traps)):
        assert parse_money("1.2345万") == Decimal(12345)
        assert parse_money("123456789") == Decimal(123456789)
        assert parse_days("1.5个月") == 45


# Words and units the parsers know, so generated inputs reach the parsing, not just the
# first refusal.
_PIECES = st.sampled_from(
    [
        "1",
        "45",
        "0",
        ".",
        ",",
        "5",
        "万",
        "千",
        "百",
        "亿",
        "两",
        "三",
        "十",
        "点",
        "半",
        "个",
        "多",
        "天",
        "周",
        "月",
        "年",
        "k",
        "w",
        "¥",
        "元",
        "about",
        " ",
        "a",
        "half",
        "and",
        "days",
        "weeks",
        "大约有",
        "的样子",
        "左右",
        "-",
        "+",
        "是",
        "不",
        "没有",
        "yes",
        "no",
        "!",
        "。",
        "几",
    ]
)
_WORDY = st.lists(_PIECES, max_size=40).map("".join)


@given(st.one_of(st.text(), _WORDY))
def test_days_never_raises(text: str) -> None:
    parsed = parse_days(text)
    assert parsed is None or (isinstance(parsed, int) and parsed >= 0)


@given(st.one_of(st.text(), _WORDY))
def test_money_never_raises(text: str) -> None:
    parsed = parse_money(text)
    assert parsed is None or (isinstance(parsed, Decimal) and parsed.is_finite() and parsed >= 0)


@given(st.one_of(st.text(), _WORDY))
def test_bool_never_raises(text: str) -> None:
    assert parse_bool(text) in (True, False, None)


@given(st.integers(min_value=0, max_value=10**6))
def test_days_round_trip(n: int) -> None:
    assert parse_days(f"{n}天") == n
    assert parse_days(f"{n} days") == n
    assert parse_days(str(n)) == n


@given(st.integers(min_value=0, max_value=10**5))
def test_weeks_and_months_round_trip(n: int) -> None:
    assert parse_days(f"{n}周") == 7 * n
    assert parse_days(f"{n} months") == 30 * n


@given(st.integers(min_value=0, max_value=10**12))
def test_money_round_trip(n: int) -> None:
    assert parse_money(f"{n}") == n
    assert parse_money(f"¥{n:,}") == n
    assert parse_money(f"{n}元") == n


@given(st.decimals(min_value=0, max_value=10**9, places=2))
def test_money_decimal_round_trip(amount: Decimal) -> None:
    assert parse_money(f"{amount}") == amount
    assert parse_money(f"{amount}万") == amount * 10000


@given(st.integers(min_value=0, max_value=10**8))
def test_chinese_numerals_round_trip(n: int) -> None:
    import cn2an  # the library writes what people write; the parser must read it back

    written = cn2an.an2cn(n)
    assert parse_money(written) == n
    assert parse_money(f"{written}元") == n
    assert parse_days(f"{written}天") == n
