"""How a `Turn` looks on Telegram: HTML (everything escaped), inline keyboards, splitting.

Nothing here decides *what* to say: the engine did that, and the localizer translated
it. This module only escapes, wraps and cuts plain-text pieces so Telegram accepts
them: `<b>` headings, `<i>` warnings, tap-to-copy `<code>` phrases, messages of at most
4096 characters cut at paragraph boundaries, callback data of at most 64 bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.plain import Piece, PieceKind, render_blocks
from bot.engine.turn import Repayment, Turn
from bot.i18n.catalog import Localizer

# Telegram refuses text over 4096 characters *after* entity parsing. Budgeting on the
# HTML source (always at least as long) keeps every message safely under the limit.
MAX_MESSAGE = 4096
MAX_CALLBACK_DATA = 64
# Telegram shows at most 200 characters in a callback answer toast.
MAX_CALLBACK_ANSWER = 200
# Buttons this short sit two to a row; longer labels get a row each so they stay readable.
SHORT_LABEL = 14
# The plan is read on phones: no message longer than a screen or two. Budgeted on the
# HTML source, which is never shorter than what Telegram shows.
MAX_READABLE = 1500
# A reply this long (HTML characters) or in several messages gets "typing…" first.
TYPING_THRESHOLD = 700

ANSWER_PREFIX = "a"
FORGET_YES = "f:yes"
FORGET_NO = "f:no"


# --- callback data ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceData:
    """`a:{version}:{index}`: option `index` of the question shown at `version`."""

    version: int
    index: int


@dataclass(frozen=True)
class ForgetData:
    """`f:yes` / `f:no`: the answer to the /forget confirmation."""

    confirmed: bool


@dataclass(frozen=True)
class InvalidData:
    """Callback data we never produced (forged, or from an older bot)."""


CallbackData = ChoiceData | ForgetData | InvalidData
_CHOICE_RE = re.compile(r"a:(\d{1,9}):(\d{1,4})")


def choice_data(version: int, index: int) -> str:
    """The callback data of one option button (at most 16 bytes, far under 64)."""
    data = f"{ANSWER_PREFIX}:{version}:{index}"
    if len(data.encode()) > MAX_CALLBACK_DATA:  # pragma: no cover - ints cannot get there
        raise ValueError("callback data over 64 bytes")
    return data


def parse_callback(data: str | None) -> CallbackData:
    """Decode callback data; anything unexpected is `InvalidData`, never an exception."""
    if not data:
        return InvalidData()
    if data == FORGET_YES:
        return ForgetData(confirmed=True)
    if data == FORGET_NO:
        return ForgetData(confirmed=False)
    match = _CHOICE_RE.fullmatch(data)
    if match:
        return ChoiceData(version=int(match.group(1)), index=int(match.group(2)))
    return InvalidData()


# --- HTML -------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape user- or operator-provided text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def piece_html(piece: Piece) -> str:
    """One piece as Telegram HTML (the text escaped, then wrapped)."""
    text = escape(piece.text)
    if piece.kind in (PieceKind.HEADING, PieceKind.URGENT):
        return f"<b>{text}</b>"
    if piece.kind is PieceKind.WARNING:
        return f"<i>{text}</i>"
    if piece.kind is PieceKind.PHRASE:
        # <code> is tap-to-copy in every Telegram client: the user copies the phrase
        # straight into their bank's chat or reads it out on the phone.
        body = f"<code>{text}</code>"
        return f"<b>{escape(piece.title)}</b>\n{body}" if piece.title else body
    return text


def question_html(prompt: str) -> str:
    """The question prompt, bold so it stands out under the paragraphs before it."""
    return f"<b>{escape(prompt)}</b>"


def _split_text(text: str, budget: int) -> list[str]:
    """Cut plain text into parts whose *escaped* form fits `budget`: at line breaks,
    then spaces, then anywhere (a Chinese paragraph has no spaces)."""
    if len(escape(text)) <= budget:
        return [text]
    parts: list[str] = []
    current = ""
    for unit in _units(text, budget):
        candidate = unit if not current else f"{current}{unit}"
        if len(escape(candidate)) <= budget:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = unit
    if current:
        parts.append(current)
    return [part.strip("\n") or part for part in parts]


def _units(text: str, budget: int) -> Iterable[str]:
    for line in text.splitlines(keepends=True):
        if len(escape(line)) <= budget:
            yield line
            continue
        for word in re.split(r"(?<=\s)", line):
            if len(escape(word)) <= budget:
                yield word
                continue
            # Escaping at most multiplies a character by 5 (`&amp;`), so budget // 5
            # characters always fit.
            step = max(1, budget // 5)
            for start in range(0, len(word), step):
                yield word[start : start + step]


def pieces_html(pieces: Sequence[Piece], limit: int = MAX_MESSAGE) -> list[str]:
    """HTML fragments, one or more per piece, none longer than `limit`."""
    fragments: list[str] = []
    for piece in pieces:
        rendered = piece_html(piece)
        if len(rendered) <= limit:
            fragments.append(rendered)
            continue
        # Too long for one message: cut the plain text, then wrap each part, so no cut
        # ever falls inside a tag or an entity. Wrapping adds under 100 characters.
        overhead = len(piece_html(Piece(piece.kind, "", piece.title))) + 1
        for index, part in enumerate(_split_text(piece.text, limit - overhead)):
            title = piece.title if index == 0 else None
            fragments.append(piece_html(Piece(piece.kind, part, title)))
    return fragments


def question_fragments(prompt: str, limit: int = MAX_MESSAGE) -> list[str]:
    """The question prompt as HTML fragments (one, unless the prompt is absurdly long)."""
    overhead = len(question_html("")) + 1
    return [question_html(part) for part in _split_text(prompt, limit - overhead)]


def pack_messages(fragments: Sequence[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join fragments with blank lines into as few messages as fit in `limit` each,
    cutting only between fragments (paragraph boundaries)."""
    messages: list[str] = []
    current = ""
    for fragment in fragments:
        candidate = f"{current}\n\n{fragment}" if current else fragment
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        current = fragment
    if current:
        messages.append(current)
    return messages


def keyboard(buttons: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """An inline keyboard of (label, callback data): short labels two to a row."""
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    short = len(buttons) > 2 and all(len(label) <= SHORT_LABEL for label, _ in buttons)
    per_row = 2 if short else 1
    for start in range(0, len(buttons), per_row):
        rows.append(
            [InlineKeyboardButton(text=label, callback_data=data) for label, data in buttons[start : start + per_row]]
        )
    return InlineKeyboardMarkup(rows)


def answered_html(question_html: str, label: str) -> str:
    """The question message after a button press: the chosen answer under it."""
    return f"{question_html}\n\n✅ <i>{escape(label)}</i>"


def button_label(markup: InlineKeyboardMarkup | None, data: str | None) -> str | None:
    """The label of the button that carried `data` (what the user pressed)."""
    if markup is None or data is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def toast(text: str) -> str:
    """A callback answer short enough for Telegram's 200-character toast."""
    return text if len(text) <= MAX_CALLBACK_ANSWER else text[: MAX_CALLBACK_ANSWER - 1] + "…"


@dataclass(frozen=True)
class ChartPhoto:
    """The repayment chart, translated, to be drawn and sent as a photo where it stands."""

    title: str
    x_axis: str
    y_axis: str
    lines: tuple[tuple[str, tuple[float, ...], bool], ...]  # (legend, balances, dashed)
    locale: str


def chart_photo(chart: Repayment, localizer: Localizer, locale: str) -> ChartPhoto:
    """The calculator's chart with every text in the user's language."""
    lines = tuple(
        (localizer.text(curve.label, locale), tuple(float(b) for b in curve.balances), not curve.clears)
        for curve in chart.curves
    )
    text = localizer.text
    return ChartPhoto(text(chart.title, locale), text(chart.x_axis, locale), text(chart.y_axis, locale), lines, locale)


Outgoing = str | ChartPhoto


def turn_html(turn: Turn, localizer: Localizer) -> tuple[list[Outgoing], list[tuple[str, str]]]:
    """A turn as Telegram messages (its blocks, then the question) and the question's
    buttons, which go on the last message.

    Paragraphs are packed into messages of at most `MAX_READABLE` characters; each phrase
    to say is a message of its own, so one tap copies exactly it; a repayment chart is a
    photo in its place.
    """
    locale = turn.session.locale
    outgoing: list[Outgoing] = []
    run: list[str] = []

    def flush() -> None:
        outgoing.extend(pack_messages(run, MAX_READABLE))
        run.clear()

    charts = iter(block for block in turn.blocks if isinstance(block, Repayment))
    for piece in render_blocks(turn, localizer, locale):
        if piece.kind is PieceKind.CHART:
            flush()
            outgoing.append(chart_photo(next(charts), localizer, locale))
        elif piece.kind is PieceKind.PHRASE:
            flush()
            outgoing.extend(pieces_html([piece], MAX_READABLE))
        else:
            run.extend(pieces_html([piece], MAX_READABLE))
    buttons: list[tuple[str, str]] = []
    if turn.question is not None:
        question = turn.question
        run.extend(question_fragments(localizer.text(question.prompt, locale), MAX_READABLE))
        buttons = [
            (localizer.text(option.label, locale), choice_data(question.version, option.index))
            for option in question.options
        ]
    flush()
    return outgoing, buttons
