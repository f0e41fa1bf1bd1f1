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
"""

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Final

import cn2an

__all__ = ["parse_bool", "parse_days", "parse_money"]

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
    "perhaps like just only already exactly some ~ ≈ "
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


def parse_days(text: str) -> int | None:
    """Read a number of days: "45", "45天", "两个月", "一个半月", "3 weeks", "about 2 months".

    Week = 7, month = 30, year = 365 days, half a year = 180; a bare number is days.
    Returns None when the text is not a number of days (or is negative).
    """
    normal = _normalize(text)
    if normal is None:
        return None
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
    **dict.fromkeys(("千", "k", "thousand"), 3),
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


def parse_money(text: str) -> Decimal | None:
    """Read an amount in yuan: "15000", "1.5万", "两万三", "3k", "¥8,000", "1.2w", "about 20000".

    The Decimal is exact (1.5万 is exactly 15000). Returns None when the text is not an
    amount in yuan (or is negative, or names another currency).
    """
    normal = _normalize(text)
    if normal is None:
        return None
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
