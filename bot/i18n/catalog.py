"""Translation and formatting: turns the engine's `Msg` into text in the user's language.

The catalogs are the `.po` files under `locales/`, read with Babel at start, so a
fresh clone needs no compile step. English texts are the msgids themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, get_datetime_format
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_percent
from babel.units import format_unit

from bot.engine.turn import Days, Money, Msg, Percent, When

CHINESE = "zh_CN"
ENGLISH = "en"
# The order matters: the first is the default when a language is unknown.
SUPPORTED = (CHINESE, ENGLISH)
CURRENCY = "CNY"
MISSING_VALUE = "—"


def normalize_locale(code: str | None, default: str = CHINESE) -> str:
    """`zh`, `zh-hans`, `zh_CN.UTF-8` → zh_CN; `en*` → en; anything else → `default`."""
    if not code:
        return default
    code = code.strip().lower().replace("-", "_")
    if code.startswith("zh"):
        return CHINESE
    if code.startswith("en"):
        return ENGLISH
    return default


class _Values(dict[str, str]):
    """Placeholders with no value show a dash instead of failing the whole text."""

    def __missing__(self, key: str) -> str:
        return MISSING_VALUE


class Localizer:
    """Holds the catalogs; `text(msg, locale)` renders a message as plain (unescaped) text."""

    def __init__(self, catalogs: dict[str, dict[str, str]]) -> None:
        self._catalogs = catalogs
        self.locales = tuple(loc for loc in SUPPORTED if loc in catalogs) or SUPPORTED

    @classmethod
    def load(cls, folder: Path) -> Localizer:
        """Read `folder/<locale>/LC_MESSAGES/messages.po` for every locale present."""
        catalogs: dict[str, dict[str, str]] = {}
        for po_file in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
            locale = po_file.parent.parent.name
            with po_file.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            catalogs[locale] = {
                str(message.id): str(message.string)
                for message in catalog
                if message.id and isinstance(message.string, str) and message.string and not message.fuzzy
            }
        return cls(catalogs)

    def locale_for(self, language_code: str | None) -> str:
        """A Telegram `language_code` (or a terminal locale) → the locale to answer in."""
        return normalize_locale(language_code, default=ENGLISH if language_code else CHINESE)

    def translate(self, msgid: str, locale: str) -> str:
        return self._catalogs.get(locale, {}).get(msgid, msgid)

    def translations_of(self, msgid: str) -> list[str]:
        """A text in every language we have (typed option labels match in any of them)."""
        return [catalog[msgid] for catalog in self._catalogs.values() if msgid in catalog]

    def missing(self, msgids: Iterable[str], locale: str) -> list[str]:
        """The msgids with no translation in `locale`."""
        catalog = self._catalogs.get(locale, {})
        return [msgid for msgid in msgids if msgid not in catalog]

    def text(self, msg: Msg, locale: str) -> str:
        """The message in `locale`, its {placeholders} filled with formatted values."""
        template = self.translate(msg.msgid, locale)
        if not msg.values and "{" not in template:
            return template
        values = _Values({name: self.value(value, locale) for name, value in msg.values.items()})
        try:
            return template.format_map(values)
        except (ValueError, IndexError, AttributeError, KeyError):
            # A translator's broken placeholder must not cost the user the answer.
            return msg.msgid.format_map(values) if template != msg.msgid else msg.msgid

    def value(self, value: Msg | Money | Days | Percent | When | str | int, locale: str) -> str:
        """One value formatted for `locale` (amounts, day counts, shares, nested texts)."""
        if isinstance(value, Msg):
            return self.text(value, locale)
        if isinstance(value, Money):
            return str(format_currency(value.amount, CURRENCY, locale=locale))
        if isinstance(value, Days):
            return str(format_unit(value.count, "duration-day", locale=locale))
        if isinstance(value, Percent):
            return str(format_percent(value.share, locale=locale))
        if isinstance(value, When):
            return _when(value, locale)
        return str(value)


def _when(value: When, locale: str) -> str:
    """A date and time of day in the value's zone, in the locale's own order and words."""
    tz = ZoneInfo(value.zone)
    day = format_skeleton("yMMMEd", value.instant, tzinfo=tz, locale=locale)
    if not value.clock:
        return str(day)
    clock = format_skeleton("Hm", value.instant, tzinfo=tz, locale=locale)
    # The locale's pattern for a date with a time ("{1}, {0}" in English, "{1} {0}" in Chinese).
    return str(get_datetime_format("medium", locale=locale)).replace("{1}", str(day)).replace("{0}", str(clock))
