"""The terminal conversation: the same conversation as Telegram, as numbered lines.

Reads stdin line by line, so it works interactively and piped
(`printf '1\n两个月\n' | python -m bot chat --lang zh`), and ends on EOF.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.channels.plain import PieceKind, render_blocks
from bot.conversations import Advisor
from bot.engine.events import Command, CommandName, Event, Said, Start
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.runtime import build_advisor

QUIT_WORDS = frozenset({"/quit", "/exit", "quit", "exit", "退出"})
_MARKS = {
    PieceKind.WARNING: "! ",
    PieceKind.URGENT: "!!! ",
    PieceKind.HEADING: "## ",
}


def render_turn(turn: Turn, localizer: Localizer) -> str:
    """A turn as terminal text: paragraphs, phrases set off, the question with numbered options."""
    locale = turn.session.locale
    lines: list[str] = []
    for piece in render_blocks(turn, localizer, locale):
        if piece.kind is PieceKind.PHRASE:
            if piece.title:
                lines.append(f"【{piece.title}】")
            lines.extend(f"  │ {line}" for line in piece.text.splitlines())
        else:
            lines.append(_MARKS.get(piece.kind, "") + piece.text)
        lines.append("")
    if turn.question:
        lines.append(localizer.text(turn.question.prompt, locale))
        for option in turn.question.options:
            # Where a typed number is the answer itself (days, amounts), options are not numbered.
            mark = f"{option.index + 1}." if turn.question.numbered else "·"
            lines.append(f"  {mark} {localizer.text(option.label, locale)}")
    return "\n".join(lines).rstrip() + "\n"


def parse_line(line: str) -> Event | None:
    """A typed line as an event; None for an empty line."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("/"):
        name, _, argument = text[1:].partition(" ")
        try:
            return Command(CommandName(name.lower()), argument.strip())
        except ValueError:
            if name.lower() == "start":
                return Start()
    return Said(text)


async def chat(advisor: Advisor, locale: str, stdin: TextIO, stdout: TextIO, chat_key: str = "terminal") -> None:
    """Run one conversation until EOF or /quit."""
    interactive = stdin.isatty()

    async def show(turn: Turn) -> None:
        stdout.write(render_turn(turn, advisor.localizer) + "\n")
        stdout.flush()

    await advisor.handle(chat_key, Start(locale), deliver=show, locale=locale)
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line or line.strip().lower() in QUIT_WORDS:
            break
        if not interactive:
            stdout.write(f"> {line.strip()}\n")
        event = parse_line(line)
        if event is not None:
            await advisor.handle(chat_key, event, deliver=show)


def run(locale: str, database_url: str | None = None) -> None:
    """Blocking entry point for `python -m bot chat`."""

    async def main() -> None:
        advisor = await build_advisor(database_url=database_url)
        try:
            await chat(advisor, locale, sys.stdin, sys.stdout)
        finally:
            await advisor.store.close()

    asyncio.run(main())
