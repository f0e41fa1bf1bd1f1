"""Typed answers: what a user wrote, read as a number of days, an amount in yuan, or yes/no.

Pure functions. Each returns the parsed value or None when the text is not understood;
none of them raises, whatever the input. Range checks belong to the engine, so a big
value is returned as it is. A negative amount or number of days is not understood.

The whole answer must be a value, give or take hedges ("about", "大概", "左右", "了"):
a sentence that merely contains a number ("昨天买的 3 件") is not understood, so the
engine asks again instead of guessing.

Days: a bare number is days; week = 7, month = 30, year = 365 days; the fractional part
of a number of years counts in 30-day months, so half a year is 180 days and 一年半 is
545. A fractional total is rounded half up ("一周半" = 11). "3个多月", "over 90 days",
"十几天" take the number that was said (90, 90, 10).

Money is in yuan (CNY): another currency ("$500", "500美元") is not understood.

`read_days` / `read_money` keep more of what was meant: a range stays a range
("三四个月" is 90–120 days, its middle 105 used for estimates), a hedge marks the
reading approximate, and what must not be guessed ("3 or 40", "$500", "12.000", "几千")
is a `Doubt` naming the message that asks again with an example. `read_slot` adds the
slot's limits; `readback` and `shown` say what was understood. `parse_days` and
`parse_money` are their one-number forms (a range gives its middle, a doubt None).
"""

import decimal
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Final

import cn2an

from bot.engine.turn import Days, Money, Msg

__all__ = [
    "Doubt",
    "Kind",
    "Reading",
    "is_unsure",
    "parse_bool",
    "parse_days",
    "parse_money",
    "read_day_of_month",
    "read_days",
    "read_money",
    "read_number",
    "read_slot",
    "readback",
    "shown",
    "within_limits",
]

# No answer to "how many days / how much" is this long; the cap also bounds the cost of
# a call and keeps every number small enough for exact arithmetic.
_MAX_LEN: Final = 100

# Taiwan and Hong Kong users write traditional characters; only the ones the patterns
# below look for need mapping (cn2an maps numerals like 貳 itself). Phones type a
# curly apostrophe ("don’t"), which NFKC keeps.
_TRADITIONAL: Final = str.maketrans(
    "個兩週萬億塊幾餘來沒對無禮約點錢過經會’",
    "个两周万亿块几余来没对无礼约点钱过经会'",
)

# NFKC has already turned full-width forms (！，．～) into ASCII ones.
_TRAILING_PUNCT: Final = " .。!?~…,;:、"


def _normalize(text: str) -> str | None:
    if len(text) > _MAX_LEN:
        return None
    # NFKC: full-width digits, ￥ -> ¥, ideographic space; it may lengthen the text.
    normal = unicodedata.normalize("NFKC", text)
    if len(normal) > _MAX_LEN:
        return None
    normal = " ".join(normal.casefold().translate(_TRADITIONAL).split())
    return normal.rstrip(_TRAILING_PUNCT) or None


# ---------------------------------------------------------------------------- numbers

_CN_NUMERALS: Final = "零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟"
# ASCII digits only: `\d` would also take Arabic-Indic and other scripts' digits.
_ARABIC: Final = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
# Anything with a Chinese numeral in it ("两万三", "1万5", "一点五"); cn2an decides.
_CHINESE: Final = rf"[0-9]*[{_CN_NUMERALS}点][0-9{_CN_NUMERALS}点]*"

_UNITS: Final = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORD_VALUES: Final[dict[str, int]] = {
    **{word: n for n, word in enumerate(_UNITS)},
    **{word: 20 + 10 * n for n, word in enumerate(_TENS)},
    "a": 1,
    "an": 1,
    "couple": 2,
}
_ONES: Final = "|".join(_UNITS[1:10])
_WORD: Final = (
    rf"(?:{'|'.join(_TENS)})(?:[- ](?:{_ONES}))?"
    rf"|{'|'.join(sorted(_UNITS, key=len, reverse=True))}|(?:a[ ])?couple(?:[ ]of)?|an|a"
)
# Named groups: a = Arabic digits, c = Chinese numerals, w = English words.
_NUMBER: Final = rf"(?:(?P<a>{_ARABIC})|(?P<c>{_CHINESE})|(?P<w>{_WORD})\b)"

# Single characters are most of what people type ("两个月", "三周") and cost cn2an
# ~20 µs each; the table gives the same answer without the call.
_CN_DIGITS: Final[dict[str, int]] = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "壹": 1,
    "二": 2,
    "贰": 2,
    "两": 2,
    "三": 3,
    "叁": 3,
    "四": 4,
    "肆": 4,
    "五": 5,
    "伍": 5,
    "六": 6,
    "陆": 6,
    "七": 7,
    "柒": 7,
    "八": 8,
    "捌": 8,
    "九": 9,
    "玖": 9,
    "十": 10,
    "拾": 10,
}
_FRACTION_DIGITS: Final[dict[str, str]] = {
    **{ch: str(n) for ch, n in _CN_DIGITS.items() if n < 10 and ch != "两"},
    **{str(n): str(n) for n in range(10)},
}
_CN_POWERS: Final[dict[str, int]] = {
    "十": 1,
    "拾": 1,
    "百": 2,
    "佰": 2,
    "千": 3,
    "仟": 3,
    "万": 4,
    "亿": 8,
}


@lru_cache(maxsize=1024)
def _cn2an_int(numeral: str) -> int | None:
    # Cached (the module's only state, invisible to callers): cn2an costs 15-40 µs a
    # call, and the same few numerals come back all day.
    try:
        value = cn2an.cn2an(numeral, "smart")
    # What cn2an raises on text outside its grammar (found by fuzzing it): ValueError
    # for most, KeyError for some misplaced units ("一亿三").
    except (ValueError, KeyError):
        return None
    # Only digit-only input comes back as float, and that never reaches here.
    return value if isinstance(value, int) and value >= 0 else None


def _chinese_int(numeral: str) -> int | None:
    digit = _CN_DIGITS.get(numeral)
    if digit is not None:
        return digit
    if numeral.isascii():
        return int(numeral) if numeral.isdigit() else None
    head, power = numeral[:-1], _CN_POWERS.get(numeral[-1:])
    if power is not None and head.isascii() and head.isdigit():
        # "1万": cn2an reads it with Decimal arithmetic in the caller's decimal context,
        # which may trap rounding; plain ints cannot.
        return int(head + "0" * power)
    return _cn2an_int(numeral)


def _shift(number: Decimal, places: int) -> Decimal:
    """`number * 10**places`, exact whatever the current decimal context.

    The result keeps a plain form (15000, not 1.5E+4) for whoever prints it.
    """
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # NaN/Infinity: the patterns never produce them
        return number
    exponent += places
    if exponent > 0:
        digits, exponent = (*digits, *(0,) * exponent), 0
    return Decimal((sign, digits, exponent))


def _chinese_number(numeral: str) -> Decimal | None:
    if "点" not in numeral:
        whole = _chinese_int(numeral)
        return None if whole is None else Decimal(whole)
    # cn2an gives a float for "一点五"; reading the decimals here keeps them exact.
    head, _, tail = numeral.partition("点")
    places = _CN_POWERS.get(tail[-1:], 0)  # "一点五万"
    if places:
        tail = tail[:-1]
    if not head or not tail or any(ch not in _FRACTION_DIGITS for ch in tail):
        return None
    whole = _chinese_int(head)
    if whole is None:
        return None
    fraction = "".join(_FRACTION_DIGITS[ch] for ch in tail)
    return _shift(Decimal(f"{whole}.{fraction}"), places)


def _number(match: re.Match[str]) -> Decimal | None:
    if (arabic := match["a"]) is not None:
        return Decimal(arabic.replace(",", ""))
    if (chinese := match["c"]) is not None:
        return _chinese_number(chinese)
    words = match["w"].replace("-", " ").split()  # "twenty-five", "a couple of"
    if "couple" in words:
        return Decimal(2)
    return Decimal(sum(_WORD_VALUES[word] for word in words))


def _alternatives(words: str) -> str:
    """A regex alternation of space-separated phrases, longest first.

    In a phrase, "_" stands for a space that may be left out. The result is safe in a
    re.VERBOSE pattern (which would drop a bare space).
    """
    phrases = sorted(set(words.split()), key=len, reverse=True)
    return "|".join(re.escape(p).replace("_", "[ ]?") for p in phrases)


# Hedges change nothing: "about 2 months", "大概两万", "over 90 days" take the number.
# The patterns repeat them with possessive loops (*+): phrases overlap ("大约有" is
# "大约" + "有"), and a backtracking loop over them is exponential on a failing input.
_HEDGES_BEFORE: Final = (
    "about around approximately approx approx. roughly almost nearly over under "
    "more_than less_than at_least at_most close_to just_over just_under maybe probably "
    "perhaps like just only already exactly some up_to ~ ≈ "
    "约 大约 大概 大致 差不多 将近 接近 快要 快 近 超过 多于 不到 不超过 少于 至少 起码 "
    "最多 已经 已 都 有 估计 可能 应该 才 刚 刚好 正好 整整 足足 大约有 大概有"
)
_HEDGES_AFTER: Final = (
    "ish -ish or_so or_more or_less more_or_less give_or_take + plus maybe roughly "
    "左右 上下 以上 以内 之内 前后 多 来 余 出头 的样子 样子 了 吧 啦 啊 呀 呢 的"
)

# ------------------------------------------------------------------------------- days

_DAYS_PER_UNIT: Final[dict[str, int]] = {
    **dict.fromkeys(("天", "日", "day", "days", "d"), 1),
    **dict.fromkeys(("周", "星期", "礼拜", "week", "weeks", "wk", "wks", "w"), 7),
    **dict.fromkeys(("fortnight", "fortnights"), 14),
    **dict.fromkeys(("月", "month", "months", "mo", "mos", "mth", "mths"), 30),
    **dict.fromkeys(("年", "year", "years", "yr", "yrs", "y"), 365),
}
_DAY_UNIT: Final = _alternatives(" ".join(_DAYS_PER_UNIT))
_DAYS_OVERDUE: Final = "overdue late past_due now already so_far 逾期 没还 未还 还没还 了"

_DAYS_RE: Final = re.compile(
    rf"""
    (?:(?:{_alternatives(_HEDGES_BEFORE + " 逾期 逾期了 过了")})\s*)*+
    (?:
        {_NUMBER}\s*
        (?:\+|多|几|余|来)?\s*(?P<ge>个)?\s*(?:多)?\s*
        (?P<half>半|and\ a\ half)?\s*(?:个)?\s*
        (?P<unit>{_DAY_UNIT})?\s*
        (?P<tail>半|and\ a\ half)?
    |
        (?:半|half(?:\ an?)?)\s*(?:个)?\s*(?P<half_unit>{_DAY_UNIT})
    |
        (?P<today>今天|today|当天)
    )
    (?:\s*(?:{_alternatives(_HEDGES_AFTER + " " + _DAYS_OVERDUE)}))*+
    """,
    re.VERBOSE,
)


def _days(numerator: int, denominator: int, per_unit: int) -> int:
    """`numerator/denominator` units in whole days, rounded half up, in exact int arithmetic."""
    whole, rest = divmod(numerator, denominator)
    # A year's fraction counts in 30-day months: half a year is 180 days, as people mean.
    part = 360 if per_unit == 365 else per_unit
    twice = 2 * (whole * per_unit * denominator + rest * part)
    return (twice + denominator) // (2 * denominator)


def _single_days(normal: str) -> int | None:
    """One number of days in already normalized text, or None."""
    match = _DAYS_RE.fullmatch(normal)
    if match is None:
        return None
    if match["today"]:
        return 0
    if (half_unit := match["half_unit"]) is not None:
        return _days(1, 2, _DAYS_PER_UNIT[half_unit])
    unit, half = match["unit"], match["half"] or match["tail"]
    if unit is None and (match["ge"] or half):
        return None  # "两个", "一个半": of what?
    if match["half"] and match["tail"]:
        return None
    if match["w"] in ("a", "an") and unit is None:
        return None
    number = _number(match)
    if number is None:
        return None
    per_unit = 1 if unit is None else _DAYS_PER_UNIT[unit]
    exponent = number.as_tuple().exponent
    if not half and isinstance(exponent, int) and exponent >= 0:
        return int(number) * per_unit
    numerator, denominator = number.as_integer_ratio()
    if half:
        numerator, denominator = 2 * numerator + denominator, 2 * denominator
    return _days(numerator, denominator, per_unit)


# ------------------------------------------------------------------------------ money

_POWER_OF_MULTIPLIER: Final[dict[str, int]] = {
    **dict.fromkeys(("百", "hundred"), 2),
    **dict.fromkeys(("千", "k", "thousand", "grand"), 3),
    **dict.fromkeys(("万", "w", "wan"), 4),
    **dict.fromkeys(("百万", "million", "mn", "m"), 6),
    "千万": 7,
    "亿": 8,
}
_YUAN_BEFORE: Final = "¥ rmb cny 人民币 欠 欠了 还欠 一共 总共 共 合计 总计 总额 金额 total"
_YUAN_AFTER: Final = "元 块 块钱 圆 人民币 rmb cny yuan kuai 钱"

_MONEY_RE: Final = re.compile(
    rf"""
    (?:(?:{_alternatives(_HEDGES_BEFORE + " " + _YUAN_BEFORE)})\s*)*+
    {_NUMBER}\s*
    (?P<multiplier>{_alternatives(" ".join(_POWER_OF_MULTIPLIER))})?
    (?:\s*(?:{_alternatives(_HEDGES_AFTER + " " + _YUAN_AFTER)}))*+
    """,
    re.VERBOSE,
)


def _single_money(normal: str) -> Decimal | None:
    """One amount in yuan in already normalized text, or None."""
    match = _MONEY_RE.fullmatch(normal)
    if match is None:
        return None
    multiplier = match["multiplier"]
    if match["w"] in ("a", "an") and multiplier is None:
        return None  # "a" alone is no amount; "a thousand" is
    number = _number(match)
    if number is None:
        return None
    return number if multiplier is None else _shift(number, _POWER_OF_MULTIPLIER[multiplier])


# ------------------------------------------------------------------------------- bool

# Chinese answers yes/no by echoing the question's verb (有 / 没有, 会 / 不会), so the
# common verbs count. Matching is on the whole answer, never on a part: 不是 contains 是,
# 没错 contains 没, 不知道 contains 不.
_YES: Final = frozenset(
    {
        "是",
        "是的",
        "是啊",
        "是呀",
        "是滴",
        "对",
        "对的",
        "对啊",
        "对呀",
        "没错",
        "有",
        "有的",
        "有啊",
        "嗯",
        "嗯嗯",
        "好",
        "好的",
        "行",
        "可以",
        "当然",
        "当然了",
        "确实",
        "会",
        "能",
        "要",
        "需要",
        "想",
        "yes",
        "y",
        "yeah",
        "yea",
        "yep",
        "yup",
        "ya",
        "yah",
        "sure",
        "correct",
        "true",
        "ok",
        "okay",
        "right",
        "indeed",
        "definitely",
        "absolutely",
        "affirmative",
        "of course",
        "yes please",
        "i do",
        "i have",
        "i am",
        "that's right",
        "that is right",
    }
)
_NO: Final = frozenset(
    {
        "不是",
        "不是的",
        "不",
        "否",
        "没有",
        "没有的",
        "没有啊",
        "并没有",
        "从来没有",
        "从没",
        "从不",
        "没",
        "没呢",
        "还没",
        "还没有",
        "不对",
        "错",
        "无",
        "不会",
        "不能",
        "不要",
        "不需要",
        "不想",
        "不可以",
        "不行",
        "no",
        "n",
        "nope",
        "nah",
        "false",
        "never",
        "none",
        "negative",
        "incorrect",
        "wrong",
        "not really",
        "no way",
        "not at all",
        "of course not",
        "definitely not",
        "absolutely not",
        "i don't",
        "i do not",
        "i haven't",
        "i have not",
        "i'm not",
        "i am not",
    }
)
_PARTICLES: Final = "啊呀吧呢哦喔啦嘛了哈"


def parse_bool(text: str) -> bool | None:
    """Read yes or no: "是的", "对", "有", "yes", "yep", "ok" / "不是", "没有", "无", "no", "nope".

    Case, surrounding spaces and trailing punctuation are ignored. Anything that is not
    plainly yes or no ("maybe", "不知道") returns None.
    """
    normal = _normalize(text)
    if normal is None:
        return None
    for candidate in (normal, normal.rstrip(_PARTICLES)):
        # "嗯嗯嗯", "好好好": a repeated yes is still a yes
        if len(set(candidate)) == 1 and len(candidate) > 1 and not candidate.isascii():
            candidate = candidate[0]
        if candidate in _YES:
            return True
        if candidate in _NO:
            return False
    return None


# A repayment day: "15", "15号", "每月15日", "十五号", "the 15th", "day 15", "月底".
_DAY_OF_MONTH_RE: Final = re.compile(
    rf"(?:每个?月的?|每月)?(?:(?:on )?the |on |day |every month on the |every month on )?"
    rf"(?P<n>[0-9]{{1,2}}|[{_CN_NUMERALS}]{{1,4}})"
    r"(?:号|日|st|nd|rd|th)?(?: (?:of (?:the|each|every) month|every month|each month))?(?:号|日)?"
)
# "月底", "last day", "end of month": the last day, which a shorter month reads as its own.
_LAST_DAY_RE: Final = re.compile(r"月底|月末|最后一天|last day|end of (?:the |each |every )?month|month[- ]end")
_ORDINAL_WORDS: Final[dict[str, int]] = {
    **{
        word: n
        for n, word in enumerate(
            (
                "first",
                "second",
                "third",
                "fourth",
                "fifth",
                "sixth",
                "seventh",
                "eighth",
                "ninth",
                "tenth",
                "eleventh",
                "twelfth",
                "thirteenth",
                "fourteenth",
                "fifteenth",
                "sixteenth",
                "seventeenth",
                "eighteenth",
                "nineteenth",
            ),
            start=1,
        )
    },
    "twentieth": 20,
    "thirtieth": 30,
}
_ORDINAL_WORD: Final = rf"(?:(?:twenty|thirty)[- ]?)?(?:{'|'.join(sorted(_ORDINAL_WORDS, key=len, reverse=True))})"
_MONTH_NAMES: Final = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_CN_DAY: Final = rf"[0-9]{{1,2}}|[{_CN_NUMERALS}廿卅]{{1,4}}"
# Every way a number is marked as a day of the month: 15号 / 十五日, the 15th, fifteenth,
# 2024-03-15, 3/15 (month first, as Chinese and American dates are written), March 15,
# 15 March. Each alternative has one group `d`, `w` (an ordinal word) or `o` (other).
_DAY_MARKED_RE: Final = re.compile(
    rf"(?<![0-9])(?P<d>{_CN_DAY}) ?(?:号|日)"
    rf"|(?<![0-9])(?P<o>[0-9]{{1,2}})(?:st|nd|rd|th)\b"
    rf"|\b(?P<w>{_ORDINAL_WORD})\b"
    rf"|(?<![0-9])[0-9]{{4}}[-/.][0-9]{{1,2}}[-/.](?P<iso>[0-9]{{1,2}})(?![0-9])"
    rf"|(?<![0-9])(?:1[0-2]|0?[1-9])/(?P<md>[0-9]{{1,2}})(?![0-9/])"
    rf"|\b(?:{_MONTH_NAMES})\.? (?P<after>[0-9]{{1,2}})(?![0-9])"
    rf"|(?<![0-9])(?P<before>[0-9]{{1,2}}) (?:{_MONTH_NAMES})\b"
)
# A day written out in cardinal words, alone ("twenty eight").
_SPELLED_DAY_RE: Final = re.compile(
    rf"(?:on )?(?:the )?(?P<n>(?:{'|'.join(_TENS)})(?:[- ](?:{_ONES}))?|{'|'.join(_UNITS[1:])})"
)
# Right before the repayment day when a message names two days ("账单日5号，还款日23号").
_DUE_CUE_RE: Final = re.compile(r"(?:还款日?|还|due(?: date| day)?|pay(?:ment)?(?: day)?)(?:是|为|在|is|on)?\s*$")


def _day_value(match: re.Match[str]) -> int | None:
    """The day a `_DAY_MARKED_RE` match names, if it is a number at all."""
    if match["w"] is not None:
        word = match["w"].replace("-", " ").split()
        tens = {"twenty": 20, "thirty": 30}.get(word[0], 0) if len(word) > 1 else 0
        return tens + _ORDINAL_WORDS[word[-1]]
    number = next(group for group in match.groups() if group is not None)
    if number.isdigit():
        return int(number)
    return _chinese_int(number.replace("廿", "二十").replace("卅", "三十"))


def read_day_of_month(text: str) -> int | None:
    """A day of the month, 1–31, wherever it stands in the message ("15", "每月15号吧",
    "好像是二十号", "I think it's the 10th", "twenty-first", "3月15日", "2024-03-18"); "月底"
    / "end of month" is 31, which a shorter month reads as its last day. None when there
    is no day, when it is out of range, or when two different days are named and neither
    is marked as the repayment day: asking again beats guessing a due date."""
    normal = _normalize(text)
    if normal is None:
        return None
    bare = _DAY_OF_MONTH_RE.fullmatch(normal)
    if bare is not None:  # the whole message is the day ("15", "十五", "每月15")
        number = bare["n"]
        day = int(number) if number.isdigit() else _chinese_int(number)
        return day if day is not None and 1 <= day <= 31 else None
    spelled = _SPELLED_DAY_RE.fullmatch(normal)
    if spelled is not None:  # "twenty eight", "the twelve"
        day = sum(_WORD_VALUES[word] for word in spelled["n"].replace("-", " ").split())
        return day if 1 <= day <= 31 else None
    days: dict[int | None, bool] = {}  # day -> marked as the repayment day
    for match in _DAY_MARKED_RE.finditer(normal):
        day = _day_value(match)
        is_due = _DUE_CUE_RE.search(normal[max(0, match.start() - 12) : match.start()]) is not None
        days[day] = days.get(day, False) or is_due
    if _LAST_DAY_RE.search(normal):
        days[31] = days.get(31, False)
    if len(days) > 1:
        due = [day for day, marked in days.items() if marked]
        days = {due[0]: True} if len(due) == 1 else {}
    if len(days) != 1:
        return None
    (day,) = days
    return day if day is not None and 1 <= day <= 31 else None


# ---------------------------------------------------------------- readings with doubt
#
# The parsers above read one exact value. What people type is often a range ("三四个月",
# "5到6万", "1-3 months"), an approximation ("两万多", "快三个月") or something that must
# not be guessed ("3 or 40", "$500", "12.000"). The readers below sit on top of them:
# a Reading keeps a range as a range, a Doubt names the message that asks again.


@dataclass(frozen=True)
class Reading:
    """A number the user gave: `value` is used for estimates (the middle of a range).

    `low`/`high` are set together, only for a range, with low <= value <= high.
    `approximate` is true for a range or a hedged number ("两万多", "about 45 days").
    Days are whole numbers of days; money is yuan, exact.
    """

    value: Decimal
    low: Decimal | None = None
    high: Decimal | None = None
    approximate: bool = False

    @property
    def is_range(self) -> bool:
        """True when the user gave two ends ("3–4个月")."""
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class Doubt:
    """The text holds a number that must not be guessed; `reason` is a messages.yaml key.

    Each reason's text asks again with an example. `out_of_range` takes {min} and {max}.
    """

    reason: str


class Kind(StrEnum):
    """What a typed number measures (the slot types that take numbers)."""

    DAYS = "days"
    MONEY = "money"


Read = Reading | Doubt | None

DOUBT_TWO_NUMBERS: Final = "doubt_two_numbers"
DOUBT_CURRENCY: Final = "doubt_currency"
DOUBT_SEPARATOR: Final = "doubt_separator"
DOUBT_VAGUE_DAYS: Final = "doubt_vague_days"
DOUBT_VAGUE_MONEY: Final = "doubt_vague_money"
OUT_OF_RANGE: Final = "out_of_range"

# Arithmetic on readings must be exact whatever the caller's decimal context (the
# engine's thread may trap Inexact); inputs are at most _MAX_LEN characters, so 200
# digits are always enough.
_EXACT: Final = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP, traps=[])

# Emoji and pictographs carry no number; "大概2万吧😅" is "大概2万吧".
_NOISE_CATEGORIES: Final = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Me", "Mn", "Cf"})
_EDGE_PUNCT: Final = " .。!?…,;:、\"'“”‘’()（）[]【】<>《》「」『』*#"
_PARTICLES_AT_END: Final = "吧啊呀呢哦喔嘛哈啦"

_CURRENCY_RE: Final = re.compile(
    r"\$|€|£|₩|₹|₽|美元|美金|欧元|英镑|港币|港元|港纸|日元|日币|台币|新台币|澳元|加元|新币|韩元|卢布|泰铢"
    r"|(?<![a-z])(?:usd|hkd|eur|euros?|gbp|jpy|yen|twd|ntd|sgd|aud|cad|krw|dollars?|bucks|pounds?|quid)(?![a-z])"
)
# 12.000 / 1.000.000 (European thousands) or 1,5000 / 12,5 (a misplaced or decimal
# comma): the reader cannot tell 12 from 12000, so it asks.
_DOT_THOUSANDS_RE: Final = re.compile(
    r"(?<![0-9.,])[0-9]{1,3}(?:\.[0-9]{3}){2,}(?![0-9])"
    r"|(?<![0-9.,])[0-9]{1,3}\.[0-9]{3}(?![0-9.])(?!\s*(?:万|千|百|亿|k|w|m|grand|thousand|million))"
)
_BAD_COMMA_RE: Final = re.compile(r"[0-9],(?:[0-9]{1,2}|[0-9]{4,})(?![0-9])")

_PAIR_DIGITS: Final = "一二两三四五六七八九"
_PAIR_RE: Final = re.compile(f"([{_PAIR_DIGITS}])([{_PAIR_DIGITS}])")
_PAIR_VALUE: Final[dict[str, int]] = {ch: _CN_DIGITS[ch] for ch in _PAIR_DIGITS}
# "十几天" is 11–19 days, "二十几" 21–29: a range people mean.
_TEENS_RE: Final = re.compile(f"((?:[{_PAIR_DIGITS}])?十)几")
_VAGUE_RE: Final = re.compile(r"几|(?<![a-z])(?:a few|few|several|many|a lot of|lots of)(?![a-z])")

_SMALL_RE: Final = re.compile(r"小(?=[0-9一二两三四五六七八九十])")  # 小两万: nearly 20,000
_BETWEEN_RE: Final = re.compile(r"^(?:between|在)\s*(?P<a>.+?)\s*(?:and|和|与|跟)\s*(?P<b>.+?)(?:\s*(?:之间|中间))?$")
_BETWEEN_TAIL_RE: Final = re.compile(r"\s*(?:之间|中间)$")
_RANGE_SEP_RE: Final = re.compile(r"\s*(?:-|~|–|—|到|至|或者|或|/|(?<![a-z])(?:to|or)(?![a-z]))\s*")
# Where the number of a range's right end stops and its unit begins: "4|个月", "6|万".
_LEADING_NUMBER_RE: Final = re.compile(
    rf"^(?P<head>(?:(?:{_alternatives(_HEDGES_BEFORE)})\s*)*+)"
    rf"(?P<n>[0-9][0-9.,]*|[零〇一二两三四五六七八九十]+|(?:{_WORD})(?![a-z]))(?P<rest>.*)$"
)
_BARE_NUMBER_RE: Final = re.compile(
    rf"(?:(?:{_alternatives(_HEDGES_BEFORE)})\s*)*+(?:[0-9][0-9.,]*|[{_CN_NUMERALS}点]+|(?:{_WORD}))"
)
_APPROX_RE: Final = re.compile(
    r"多|来|余|出头|左右|上下|以上|以内|之内|前后|快|将近|接近|近|约|大概|大约|大致|差不多|估计|可能|样子|不到|少于|超过|至少|起码|最多|小|几"
    r"|[~≈+]"
    r"|(?<![a-z])(?:about|around|approx|approximately|roughly|nearly|almost|over|under|more than|less than"
    r"|at least|at most|close to|just over|just under|up to|maybe|probably|perhaps|ish|or so|give or take"
    r"|more or less|plus|some)(?![a-z])"
)
_HAS_NUMBER_RE: Final = re.compile("[0-9二两三四五六七八九十百千万]")  # not 一: "一点也不清楚"
_NUMBER_TOKEN_RE: Final = re.compile(rf"[0-9]+(?:[.,][0-9]+)*|[{_CN_NUMERALS}]+|(?<![a-z])(?:{_WORD})(?![a-z])")
# Most ranges people give span a factor of 2 or 3 ("3–4个月", "1–3 months"); the bot's
# own "1–4 weeks" is the widest. Ends further apart ("3 or 40") are two numbers.
_MAX_RATIO: Final = 4
_NEAR_ENOUGH: Final[dict[Kind, int]] = {Kind.DAYS: 10, Kind.MONEY: 0}


@lru_cache(maxsize=4096)  # the skip words are cleaned on every answer; user texts repeat too
def _clean(text: str) -> str | None:
    """Normalize and drop emoji, edge punctuation and trailing particles."""
    normal = _normalize(text)
    if normal is None:
        return None
    kept = "".join(ch for ch in normal if unicodedata.category(ch) not in _NOISE_CATEGORIES)
    kept = " ".join(kept.split()).strip(_EDGE_PUNCT)
    # A trailing "~" is a tone ("两万吧~"), not a range; NFKC made "～" into "~".
    while kept and (kept[-1] in _PARTICLES_AT_END or kept[-1] in _EDGE_PUNCT or kept[-1] == "~"):
        kept = kept[:-1].rstrip()
    kept = _SMALL_RE.sub("约", kept)
    return kept or None


def _exact(number: int | Decimal) -> Decimal:
    """A plain, integral-when-possible Decimal: 25000, not 2.5E+4 or 25000.0."""
    with decimal.localcontext(_EXACT):
        value = Decimal(number)
        if value == value.to_integral_value():
            return Decimal(int(value))
        return value.normalize() if value.as_tuple().exponent != 0 else value


def _single(normal: str, kind: Kind) -> Decimal | None:
    if kind is Kind.DAYS:
        days = _single_days(normal)
        return None if days is None else Decimal(days)
    return _single_money(normal)


def _middle(low: Decimal, high: Decimal, kind: Kind) -> Decimal:
    with decimal.localcontext(_EXACT):
        total = low + high
        if kind is Kind.DAYS:  # whole days, half up: 10–15 days is 13
            return Decimal(int((total / 2).to_integral_value(rounding=decimal.ROUND_HALF_UP)))
        return _exact(total / 2)


def _as_range(low: Decimal, high: Decimal, kind: Kind) -> Read:
    """The two ends as a range, or a Doubt when they are not a clear one."""
    if low == high:
        return Reading(low, approximate=True)
    with decimal.localcontext(_EXACT):
        clear = low < high and (high <= low * _MAX_RATIO or high - low <= _NEAR_ENOUGH[kind])
    if not clear:
        return Doubt(DOUBT_TWO_NUMBERS)
    return Reading(_middle(low, high, kind), low, high, approximate=True)


def _pair(normal: str, kind: Kind) -> Read:
    """Adjacent Chinese numerals: 三四个月, 两三万, 一两周, 三五千, 十七八天, 一万二三."""
    found = _PAIR_RE.search(normal)
    if found is None:
        return None
    a, b = _PAIR_VALUE[found[1]], _PAIR_VALUE[found[2]]
    if not (b == a + 1 or (a, b) == (3, 5)):
        return Doubt(DOUBT_TWO_NUMBERS)
    before, after = normal[: found.start()], normal[found.end() :]
    if _PAIR_RE.search(after) or _PAIR_RE.search(before):
        return Doubt(DOUBT_TWO_NUMBERS)
    low = _single(before + found[1] + after, kind)
    high = _single(before + found[2] + after, kind)
    if low is None or high is None:
        return None
    return _as_range(low, high, kind)


def _split_range(normal: str) -> tuple[str, str] | None:
    between = _BETWEEN_RE.match(normal)
    if between is not None:
        return between["a"], between["b"]
    if _BETWEEN_TAIL_RE.search(normal):  # "在3到4个月之间"
        normal = _BETWEEN_TAIL_RE.sub("", normal).removeprefix("在").strip()
    parts = _RANGE_SEP_RE.split(normal)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def _range(normal: str, kind: Kind) -> Read:
    """Two ends joined by -, ~, –, 到, 至, to, or, between … and …; the unit may be on one end."""
    sides = _split_range(normal)
    if sides is None:
        return None
    left, right = sides
    high = _single(right, kind)
    if high is None:
        return None
    low: Decimal | None = None
    lead = _LEADING_NUMBER_RE.match(right)
    if lead is not None and lead["rest"].strip() and _BARE_NUMBER_RE.fullmatch(left):
        # "3-4个月", "5到6万", "two or three months": the unit is said once, at the end.
        low = _single(left + lead["rest"], kind)
        if low is not None and low > high:
            low = None  # "5000-2万": the left end had its own size
    if low is None:
        low = _single(left, kind)
    if low is None:
        return None
    return _as_range(low, high, kind)


def read_number(text: str, kind: Kind) -> Read:
    """Read a typed number of days or yuan, keeping ranges and doubts.

    Returns a Reading, a Doubt (a number is there but must be asked again: two numbers
    that are not a clear range, a foreign currency, a separator that could be decimal
    or thousands, a vague "几千"), or None when the text is not a number at all.
    Never raises. Limits are not checked here: see `read_slot`.
    """
    normal = _clean(text)
    if normal is None:
        return None
    if kind is Kind.MONEY and _CURRENCY_RE.search(normal):
        return Doubt(DOUBT_CURRENCY)
    if _DOT_THOUSANDS_RE.search(normal) or _BAD_COMMA_RE.search(normal):
        return Doubt(DOUBT_SEPARATOR)
    teens = _TEENS_RE.search(normal)
    if teens is not None:
        low = _single(normal[: teens.end() - 1] + "一" + normal[teens.end() :], kind)
        high = _single(normal[: teens.end() - 1] + "九" + normal[teens.end() :], kind)
        if low is not None and high is not None:
            return _as_range(low, high, kind)
    if _VAGUE_RE.search(normal):
        return Doubt(DOUBT_VAGUE_DAYS if kind is Kind.DAYS else DOUBT_VAGUE_MONEY)
    paired = _pair(normal, kind)
    if paired is not None:
        return paired
    single = _single(normal, kind)
    if single is not None:
        return Reading(single, approximate=_APPROX_RE.search(normal) is not None)
    ranged = _range(normal, kind)
    if ranged is not None:
        return ranged
    if len(_NUMBER_TOKEN_RE.findall(normal)) >= 2:
        return Doubt(DOUBT_TWO_NUMBERS)
    return None


def read_days(text: str) -> Read:
    """Read a number of days: "45", "两个月", "三四个月" (90–120), "1-3 months", "快三个月"."""
    return read_number(text, Kind.DAYS)


def read_money(text: str) -> Read:
    """Read an amount in yuan: "15000", "1.5万", "两三万" (20,000–30,000), "2w+", "5 grand"."""
    return read_number(text, Kind.MONEY)


def within_limits(reading: Reading, minimum: Decimal | None, maximum: Decimal | None) -> bool:
    """True when the whole reading (both ends of a range) lies within the slot's limits."""
    low = reading.low if reading.low is not None else reading.value
    high = reading.high if reading.high is not None else reading.value
    return (minimum is None or low >= minimum) and (maximum is None or high <= maximum)


def read_slot(text: str, kind: Kind, minimum: Decimal | None = None, maximum: Decimal | None = None) -> Read:
    """`read_number` plus the slot's limits: a reading outside them is Doubt("out_of_range").

    The one function both the engine and `python -m bot parse` use, so they agree.
    """
    reading = read_number(text, kind)
    if isinstance(reading, Reading) and not within_limits(reading, minimum, maximum):
        return Doubt(OUT_OF_RANGE)
    return reading


def is_unsure(text: str, words: Iterable[str]) -> bool:
    """True when the text says the user does not know ("不确定", "not sure", "不清楚").

    `words` come from the dialogs (YAML), not from here. A text with a number in it
    ("不确定，大概3个月") is an answer, not a shrug.
    """
    normal = _clean(text)
    if normal is None or _HAS_NUMBER_RE.search(normal):
        return False
    for word in words:
        wanted = _clean(word)
        if wanted and wanted in normal:
            return True
    return False


# -------------------------------------------------------------------- showing a reading

Message = Callable[..., Msg]

# The largest unit a range of days divides into, to show it as the user said it.
_DAY_UNITS: Final = ((365, "range_years"), (30, "range_months"), (7, "range_weeks"), (1, "range_days"))


def _grouped(amount: Decimal) -> str:
    with decimal.localcontext(_EXACT):
        whole = amount == amount.to_integral_value()
        return f"{int(amount):,}" if whole else f"{amount:,.2f}"


def shown(reading: Reading, kind: Kind, message: Message) -> Msg | Days | Money:
    """The reading as a value for a text: Days/Money for one number, a range text otherwise.

    `message(key, **values)` builds a messages.yaml text (the engine's `message`). A
    range of days is shown in the largest unit both ends are whole in ("3–4个月",
    "1–4 weeks"); a range of money as "¥20,000–30,000".
    """
    if reading.low is None or reading.high is None:
        if kind is Kind.DAYS:
            return Days(int(reading.value))
        return Money(reading.value)
    if kind is Kind.MONEY:
        return message("range_money", low=_grouped(reading.low), high=_grouped(reading.high))
    low, high = int(reading.low), int(reading.high)
    for size, key in _DAY_UNITS:
        if low % size == 0 and high % size == 0 and low >= size:
            return message(key, low=low // size, high=high // size)
    return message("range_days", low=low, high=high)


def readback(reading: Reading, kind: Kind, message: Message) -> Msg:
    """What was understood, said after a typed number ("好的：逾期约3–4个月。")."""
    key = f"readback_{kind.value}" + ("_about" if reading.approximate else "")
    return message(key, **{"days" if kind is Kind.DAYS else "amount": shown(reading, kind, message)})


def parse_days(text: str) -> int | None:
    """Read a number of days: "45", "45天", "两个月", "一个半月", "3 weeks", "about 2 months".

    Week = 7, month = 30, year = 365 days, half a year = 180; a bare number is days.
    A range gives its middle ("三四个月" is 105). Returns None when the text is not a
    number of days, is negative, or is doubtful (see `read_days`).
    """
    reading = read_days(text)
    return int(reading.value) if isinstance(reading, Reading) else None


def parse_money(text: str) -> Decimal | None:
    """Read an amount in yuan: "15000", "1.5万", "两万三", "3k", "¥8,000", "1.2w", "about 20000".

    The Decimal is exact (1.5万 is exactly 15000); a range gives its middle. Returns
    None when the text is not an amount in yuan, is negative, names another currency or
    is doubtful (see `read_money`).
    """
    reading = read_money(text)
    return reading.value if isinstance(reading, Reading) else None
