"""Typed answers: days, money and yes/no as people actually write them, in zh and en."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import main as cli_main
from bot.engine.answers import (
    Doubt,
    Kind,
    Reading,
    is_unsure,
    parse_bool,
    parse_days,
    parse_money,
    read_days,
    read_money,
    read_number,
    read_slot,
    readback,
    shown,
    within_limits,
)
from bot.engine.turn import Msg
from bot.i18n.catalog import Localizer
from bot.spec.loader import load_dialogs
from bot.spec.model import SlotType

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
    ("十几天", 15),  # 11–19 days: its middle
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


# ------------------------------------------------------------ readings: ranges, doubts
#
# read_days/read_money keep what the user meant: a range stays a range (its middle is
# the value used for estimates), an approximation is marked, and what must not be
# guessed is a Doubt that asks again with an example.


ROOT = Path(__file__).resolve().parent.parent

# (text, value, low, high): low/high None for one number
DAY_READINGS = [
    # adjacent Chinese numerals with a unit: 三四个月 was once read as 1,020 days
    ("三四个月", 105, 90, 120),
    ("两三个月", 75, 60, 90),
    ("一两周", 11, 7, 14),
    ("五六天", 6, 5, 6),
    ("七八个月", 225, 210, 240),
    ("十七八天", 18, 17, 18),
    ("三四十天", 35, 30, 40),
    ("兩三個月", 75, 60, 90),  # traditional characters
    ("十几天", 15, 11, 19),
    ("二十几天", 25, 21, 29),
    # digit ranges, every separator
    ("3-4个月", 105, 90, 120),
    ("3~4个月", 105, 90, 120),
    ("3～4个月", 105, 90, 120),
    ("3–4个月", 105, 90, 120),
    ("3—4个月", 105, 90, 120),
    ("3到4个月", 105, 90, 120),
    ("3至4个月", 105, 90, 120),
    ("两到三个月", 75, 60, 90),
    ("两个月到三个月", 75, 60, 90),
    ("两周到一个月", 22, 14, 30),
    ("在3到4个月之间", 105, 90, 120),
    ("3 to 4 months", 105, 90, 120),
    ("3 or 4 months", 105, 90, 120),
    ("two or three months", 75, 60, 90),
    ("between 2 and 3 months", 75, 60, 90),
    ("about 3-4 months", 105, 90, 120),
    ("40-50天", 45, 40, 50),
    ("40 - 50 days", 45, 40, 50),
    ("1-2w", 11, 7, 14),
    # the bot's own buttons typed with a plain hyphen
    ("1-3 months", 60, 30, 90),
    ("3-6 months", 135, 90, 180),
    ("1-4 weeks", 18, 7, 28),
    ("1–4 weeks", 18, 7, 28),
    # one number, approximate or not
    ("Under a week", 7, None, None),
    ("More than 6 months", 180, None, None),
    ("快三个月", 90, None, None),
    ("将近两个月", 60, None, None),
    ("三个多月", 90, None, None),
    ("两个月左右", 60, None, None),
    ("about 45 days", 45, None, None),
    ("nearly 2 months", 60, None, None),
    ("almost a year", 365, None, None),
    ("over 90 days", 90, None, None),
    ("a fortnight", 14, None, None),
    ("两个礼拜", 14, None, None),
    ("半个月", 15, None, None),
    ("半年", 180, None, None),
    ("45", 45, None, None),
    ("４５天", 45, None, None),  # full-width digits
    ("大概两个月吧😅", 60, None, None),  # emoji and a particle around the answer
    ("45天！！", 45, None, None),
    ("「两个月」", 60, None, None),
]

MONEY_READINGS = [
    ("三五千", 4000, 3000, 5000),
    ("两三万", 25000, 20000, 30000),
    ("三四千块", 3500, 3000, 4000),
    ("一万二三", 12500, 12000, 13000),
    ("两万三四千", 23500, 23000, 24000),
    ("十几万", 150000, 110000, 190000),
    ("5到6万", 55000, 50000, 60000),
    ("5-6万", 55000, 50000, 60000),
    ("2~3k", 2500, 2000, 3000),
    ("2-3w", 25000, 20000, 30000),
    ("1万到1.5万", 12500, 10000, 15000),
    ("1.5-2万", 17500, 15000, 20000),
    ("20000-30000", 25000, 20000, 30000),
    ("¥20,000–30,000", 25000, 20000, 30000),
    ("5000到2万", 12500, 5000, 20000),
    ("between 5000 and 8000", 6500, 5000, 8000),
    ("5000 or 6000", 5500, 5000, 6000),
    ("5 to 6 grand", 5500, 5000, 6000),
    ("两万多", 20000, None, None),
    ("一万来块", 10000, None, None),
    ("两万出头", 20000, None, None),
    ("1万左右", 10000, None, None),
    ("快两万", 20000, None, None),
    ("将近三万", 30000, None, None),
    ("小两万", 20000, None, None),
    ("2w+", 20000, None, None),
    ("2W", 20000, None, None),
    ("3k", 3000, None, None),
    ("5 grand", 5000, None, None),
    ("about 20k", 20000, None, None),
    ("around 15000", 15000, None, None),
    ("more than 50000", 50000, None, None),
    ("１５０００", 15000, None, None),  # full-width digits
    ("大概2万吧😅", 20000, None, None),
    ("💸 8000块 💸", 8000, None, None),
]

APPROXIMATE = {"三个多月", "快三个月", "两万多", "2w+", "about 20k", "Under a week", "小两万", "大概2万吧😅"}
EXACT = {"45", "４５天", "两个礼拜", "3k", "１５０００", "5 grand"}

# (text, kind, the messages.yaml key of the question asked again)
DOUBTS = [
    ("3 or 40", Kind.DAYS, "doubt_two_numbers"),
    ("3 or 40 days", Kind.DAYS, "doubt_two_numbers"),
    ("45天 60天", Kind.DAYS, "doubt_two_numbers"),
    ("6-3个月", Kind.DAYS, "doubt_two_numbers"),  # backwards: which one?
    ("三八个月", Kind.DAYS, "doubt_two_numbers"),  # adjacent but no range people say
    ("5000 20000", Kind.MONEY, "doubt_two_numbers"),
    ("5000 or 50000", Kind.MONEY, "doubt_two_numbers"),
    ("1000-9000", Kind.MONEY, "doubt_two_numbers"),
    ("$500", Kind.MONEY, "doubt_currency"),
    ("500 USD", Kind.MONEY, "doubt_currency"),
    ("500美元", Kind.MONEY, "doubt_currency"),
    ("500 dollars", Kind.MONEY, "doubt_currency"),
    ("€300", Kind.MONEY, "doubt_currency"),
    ("HK$3000", Kind.MONEY, "doubt_currency"),
    ("3000港币", Kind.MONEY, "doubt_currency"),
    ("12.000", Kind.MONEY, "doubt_separator"),
    ("1.000.000", Kind.MONEY, "doubt_separator"),
    ("12.000元", Kind.MONEY, "doubt_separator"),
    ("1,5000", Kind.MONEY, "doubt_separator"),
    ("12,5", Kind.MONEY, "doubt_separator"),
    ("几千", Kind.MONEY, "doubt_vague_money"),
    ("几万块", Kind.MONEY, "doubt_vague_money"),
    ("a few thousand", Kind.MONEY, "doubt_vague_money"),
    ("几天", Kind.DAYS, "doubt_vague_days"),
    ("几个月", Kind.DAYS, "doubt_vague_days"),
    ("a few days", Kind.DAYS, "doubt_vague_days"),
    ("several months", Kind.DAYS, "doubt_vague_days"),
]


def _check(reading: object, value: int, low: int | None, high: int | None) -> None:
    assert isinstance(reading, Reading), reading
    assert reading.value == value
    assert reading.low == low and reading.high == high
    if low is not None:
        assert reading.approximate  # a range is never presented as exact


@pytest.mark.parametrize(("text", "value", "low", "high"), DAY_READINGS)
def test_read_days(text: str, value: int, low: int | None, high: int | None) -> None:
    _check(read_days(text), value, low, high)


@pytest.mark.parametrize(("text", "value", "low", "high"), MONEY_READINGS)
def test_read_money(text: str, value: int, low: int | None, high: int | None) -> None:
    _check(read_money(text), value, low, high)


@pytest.mark.parametrize("text", sorted(APPROXIMATE))
def test_hedged_numbers_are_marked_approximate(text: str) -> None:
    reading = read_days(text) if "月" in text or "week" in text else read_money(text)
    assert isinstance(reading, Reading) and reading.approximate


@pytest.mark.parametrize("text", sorted(EXACT))
def test_plain_numbers_are_exact(text: str) -> None:
    reading = read_days(text) if "天" in text or "礼拜" in text or text == "45" else read_money(text)
    assert isinstance(reading, Reading) and not reading.approximate


@pytest.mark.parametrize(("text", "kind", "reason"), DOUBTS)
def test_doubtful_input_is_asked_again(text: str, kind: Kind, reason: str) -> None:
    assert read_number(text, kind) == Doubt(reason)


def test_the_old_readers_use_the_middle_of_a_range_and_refuse_doubts() -> None:
    # What the engine reads until it is wired to read_days/read_money.
    assert parse_days("三四个月") == 105  # not 1,020
    assert parse_money("两三万") == 25000
    assert parse_days("3 or 40") is None
    assert parse_money("$500") is None
    assert parse_money("12.000") is None


def test_every_doubt_and_range_text_exists_in_both_languages() -> None:
    spec = load_dialogs(ROOT / "dialogs")
    localizer = Localizer.load(ROOT / "locales")
    keys = {reason for _, _, reason in DOUBTS} | {
        "range_days",
        "range_weeks",
        "range_months",
        "range_years",
        "readback_days",
        "readback_days_about",
        "readback_money",
        "readback_money_about",
    }
    for key in keys:
        english = spec.messages[key]
        assert localizer.translate(english, "zh_CN") != english, key
    for _, _, reason in DOUBTS:
        assert any(word in spec.messages[reason] for word in ("e.g.", "For example", "such as"))


@pytest.fixture(scope="module")
def render() -> object:
    spec = load_dialogs(ROOT / "dialogs")
    localizer = Localizer.load(ROOT / "locales")

    def message(key: str, **values: object) -> Msg:
        return Msg(spec.messages[key], values)  # type: ignore[arg-type]

    def text(reading: Reading, kind: Kind, locale: str, what: str = "readback") -> str:
        built = readback(reading, kind, message) if what == "readback" else shown(reading, kind, message)
        return localizer.text(built, locale) if isinstance(built, Msg) else localizer.value(built, locale)

    return text


@pytest.mark.parametrize(
    ("text", "kind", "locale", "expected"),
    [
        ("三四个月", Kind.DAYS, "zh_CN", "好的：逾期约3–4个月（如有误，发送 /back 修改）。"),
        ("3-4 months", Kind.DAYS, "en", "Got it: about 3–4 months overdue (/back to correct it)."),
        ("1-4 weeks", Kind.DAYS, "en", "Got it: about 1–4 weeks overdue (/back to correct it)."),
        ("十几天", Kind.DAYS, "zh_CN", "好的：逾期约11–19天（如有误，发送 /back 修改）。"),
        ("两三万", Kind.MONEY, "zh_CN", "好的：约¥20,000–30,000（如有误，发送 /back 修改）。"),
        ("20-30k", Kind.MONEY, "en", "Got it: about ¥20,000–30,000 (/back to correct it)."),
        ("45", Kind.DAYS, "en", "Got it: 45 days overdue (/back to correct it)."),
        ("快三个月", Kind.DAYS, "zh_CN", "好的：逾期约90天（如有误，发送 /back 修改）。"),
    ],
)
def test_readback_says_what_was_understood(render: Any, text: str, kind: Kind, locale: str, expected: str) -> None:
    reading = read_number(text, kind)
    assert isinstance(reading, Reading)
    assert render(reading, kind, locale) == expected


def test_one_amount_is_shown_as_money(render: Any) -> None:
    reading = read_money("1.5万")
    assert isinstance(reading, Reading)
    assert "15,000" in render(reading, Kind.MONEY, "en", "shown")


@pytest.mark.parametrize(
    ("text", "unsure"),
    [
        ("不确定", True),
        ("我也不清楚", True),
        ("Not sure", True),
        ("I don't know", True),
        ("不知道啊", True),
        ("不确定，大概3个月", False),
        ("两个月", False),
        ("sure", False),
        ("", False),
    ],
)
def test_unsure_reads_its_words_from_the_list_given(text: str, unsure: bool) -> None:
    words = ["不确定", "不清楚", "不知道", "not sure", "don't know", "dont know"]
    assert is_unsure(text, words) is unsure
    assert not is_unsure(text, [])  # no list, no words: nothing is hard-coded


# ------------------------------------------------------------------ limits and `parse`

_LIMITS = {
    slot.name: (Kind(slot.type.value), slot.minimum, slot.maximum)
    for flow in load_dialogs(ROOT / "dialogs").flows.values()
    for slot in flow.slots.values()
    if slot.type in (SlotType.DAYS, SlotType.MONEY)
}
_RANGEY = st.lists(
    st.sampled_from(
        [
            "3",
            "4",
            "45",
            "0",
            "三",
            "四",
            "两",
            "万",
            "千",
            "k",
            "w",
            "-",
            "~",
            "到",
            " to ",
            " or ",
            "个月",
            "天",
            "周",
            "多",
            "几",
            "十",
            "$",
            ".",
            ",",
            "000",
            "about ",
            "between ",
            " and ",
            "😅",
            "吧",
            "半",
            "+",
        ]
    ),
    max_size=12,
).map("".join)


@given(st.one_of(st.text(max_size=120), _WORDY, _RANGEY), st.sampled_from(sorted(_LIMITS)))
def test_any_accepted_value_lies_within_the_slot_limits(text: str, slot: str) -> None:
    kind, minimum, maximum = _LIMITS[slot]
    read = read_slot(text, kind, minimum, maximum)
    assert read is None or isinstance(read, Doubt | Reading)
    if isinstance(read, Reading):
        assert within_limits(read, minimum, maximum)
        assert minimum is None or (read.low if read.low is not None else read.value) >= minimum
        assert maximum is None or (read.high if read.high is not None else read.value) <= maximum


@given(st.one_of(st.text(max_size=120), _WORDY, _RANGEY), st.sampled_from(list(Kind)))
def test_a_range_has_low_le_value_le_high(text: str, kind: Kind) -> None:
    read = read_number(text, kind)
    if isinstance(read, Reading):
        assert (read.low is None) == (read.high is None)
        if read.low is not None and read.high is not None:
            assert read.low <= read.value <= read.high
            assert read.low < read.high
        assert read.value >= 0 and read.value.is_finite()


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=2, max_value=4))
def test_digit_ranges_round_trip(low: int, factor: int) -> None:
    high = low * factor
    middle = (low + high + 1) // 2  # whole days, half up
    for text in (f"{low}-{high}天", f"{low}到{high}天", f"{low} to {high} days", f"{low}～{high}"):
        _check(read_days(text), middle, low, high)
    money = read_money(f"¥{low:,}–{high:,}")
    assert isinstance(money, Reading) and (money.low, money.high) == (low, high)
    assert money.value * 2 == low + high  # money keeps the exact middle


_CN = "一二三四五六七八九"


@given(st.integers(min_value=0, max_value=7))
def test_adjacent_chinese_numerals_are_a_range(i: int) -> None:
    a, b = i + 1, i + 2
    _check(read_days(f"{_CN[i]}{_CN[i + 1]}个月"), 15 * (a + b), 30 * a, 30 * b)
    _check(read_money(f"{_CN[i]}{_CN[i + 1]}万"), 5000 * (a + b), 10000 * a, 10000 * b)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--slot", "days_overdue", "--text", "三四个月"], {"value": 105, "low": 90, "high": 120}),
        (["--slot", "amount", "--text", "两三万"], {"value": 25000, "low": 20000, "high": 30000}),
        (["--slot", "amount", "--lang", "en", "--text", "$500"], {"problem": "Please give the amount in yuan (RMB)"}),
        (["--slot", "days_overdue", "--lang", "en", "--text", "99999 days"], {"problem": "between 0 days and"}),
        (["--slot", "days_overdue", "--lang", "zh", "--text", "3 or 40"], {"problem": "不止一个数字"}),
    ],
)
def test_parse_prints_json(capsys: pytest.CaptureFixture[str], args: list[str], expected: dict[str, object]) -> None:
    assert cli_main(["parse", *args]) == 0  # exit 0 either way, as `diagnose`
    printed = json.loads(capsys.readouterr().out)
    if "problem" in expected:
        assert set(printed) == {"problem"} and str(expected["problem"]) in printed["problem"]
    else:
        assert printed == expected


def test_parse_runs_as_a_command() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bot", "parse", "--slot", "days_overdue", "--lang", "en", "--text", "1-3 months"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"value": 60, "low": 30, "high": 90}
