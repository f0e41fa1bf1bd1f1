"""Is every dialog text translated, with the same {placeholders}? (part of `validate`)"""

from __future__ import annotations

from bot.i18n.catalog import Localizer
from bot.spec.model import DialogSpec, placeholders


def translation_problems(spec: DialogSpec, localizer: Localizer, locales: tuple[str, ...]) -> list[str]:
    """`file:line:column: …` for each text missing from a catalog or with other placeholders."""
    problems = []
    seen: set[tuple[str, str]] = set()
    for msgid, where in spec.texts:
        for locale in locales:
            if (msgid, locale) in seen:
                continue
            seen.add((msgid, locale))
            if localizer.missing([msgid], locale):
                problems.append(
                    f"{where}: no {locale} translation for {_short(msgid)}; add it to "
                    f"locales/{locale}/LC_MESSAGES/messages.po (make i18n, then fill msgstr)"
                )
            elif _names(localizer.translate(msgid, locale)) != _names(msgid):
                problems.append(
                    f"{where}: the {locale} translation of {_short(msgid)} must use the same "
                    f"placeholders {sorted(placeholders(msgid))}"
                )
    return problems


def _names(text: str) -> frozenset[str] | None:
    try:
        return placeholders(text)
    except ValueError:  # a translator's broken brace: reported as a mismatch
        return None


def _short(text: str) -> str:
    one_line = " ".join(text.split())
    return repr(one_line if len(one_line) <= 60 else one_line[:57] + "…")
