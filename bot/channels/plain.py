"""A `Turn` as plain-text pieces: shared by every channel, which only adds its markup.

Texts are translated here with the session's locale. Nothing is escaped: a channel
with markup (Telegram HTML) escapes each piece before wrapping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.engine.turn import Percent, Phrase, Ranking, Repayment, Say, Tone, Turn
from bot.i18n.catalog import Localizer

BAR_WIDTH = 10
BAR_FULL = "▇"
BAR_EMPTY = "░"
# Causes below this share are left out of the chart: they would only add noise.
MIN_SHOWN_SHARE = 0.05


class PieceKind(StrEnum):
    PARAGRAPH = "paragraph"
    HEADING = "heading"
    WARNING = "warning"
    URGENT = "urgent"
    PHRASE = "phrase"
    RANKING = "ranking"
    CHART = "chart"  # the repayment chart's title: a picture where the channel can show one


@dataclass(frozen=True)
class Piece:
    """One rendered block: `text` to show, with `title` for phrases."""

    kind: PieceKind
    text: str
    title: str | None = None


_TONES = {
    Tone.NORMAL: PieceKind.PARAGRAPH,
    Tone.HEADING: PieceKind.HEADING,
    Tone.WARNING: PieceKind.WARNING,
    Tone.URGENT: PieceKind.URGENT,
}


def bar(share: float, width: int = BAR_WIDTH) -> str:
    """`▇▇▇▇▇░░░░░` for 0.5: a share drawn with block characters."""
    filled = max(0, min(width, round(share * width)))
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def render_ranking(ranking: Ranking, localizer: Localizer, locale: str) -> str:
    """`收入不稳定 ▇▇▇▇▇░░░░░ 52%` lines, each followed by its reasons."""
    lines: list[str] = []
    for cause in ranking.causes:
        if cause.probability < MIN_SHOWN_SHARE and lines:
            continue
        label = localizer.text(cause.label, locale)
        percent = localizer.value(Percent(cause.probability), locale)
        lines.append(f"{label} {bar(cause.probability)} {percent}")
        lines.extend(f"  · {localizer.text(reason, locale)}" for reason in cause.reasons[:2])
    return "\n".join(lines)


def render_blocks(turn: Turn, localizer: Localizer, locale: str | None = None) -> list[Piece]:
    """The turn's blocks in order; the question is rendered separately by the channel."""
    locale = locale or turn.session.locale
    pieces = []
    for block in turn.blocks:
        if isinstance(block, Say):
            pieces.append(Piece(_TONES[block.tone], localizer.text(block.text, locale)))
        elif isinstance(block, Phrase):
            title = localizer.text(block.title, locale) if block.title else None
            pieces.append(Piece(PieceKind.PHRASE, localizer.text(block.text, locale), title))
        elif isinstance(block, Ranking):
            pieces.append(Piece(PieceKind.RANKING, render_ranking(block, localizer, locale)))
        elif isinstance(block, Repayment):
            pieces.extend(Piece(PieceKind.PARAGRAPH, localizer.text(line, locale)) for line in block.lines)
            # A channel that can show pictures draws the chart where this marker stands.
            pieces.append(Piece(PieceKind.CHART, localizer.text(block.title, locale)))
    return pieces
