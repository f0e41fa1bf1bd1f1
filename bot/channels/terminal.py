"""The terminal conversation: the same conversation as Telegram, as numbered lines.

Reads stdin line by line, so it works interactively and piped
(`printf '1\n两个月\n' | python -m bot chat --lang zh`), and ends on EOF.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.channels.plain import PieceKind, render_blocks
from bot.config import Settings
from bot.conversations import Advisor
from bot.engine.commands import Slash, SlashCommand, parse_command
from bot.engine.events import Event, Said, Start
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.reminders.desk import ReminderDesk
from bot.runtime import ContentReloader, build_advisor
from bot.stats.report import build_report, render_text

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
        if piece.kind is PieceKind.CHART:
            continue  # a terminal shows the calculator's table alone
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


def parse_line(line: str) -> Event | SlashCommand | None:
    """A typed line as an engine event, or a command the terminal carries out itself
    (/forget, /stats); None for an empty line. An unknown command stays what the user
    said: the engine answers it."""
    text = line.strip()
    if not text:
        return None
    command = parse_command(text)
    if command is None:
        return Said(text)
    return command.event() or command


async def chat(
    advisor: Advisor,
    locale: str,
    stdin: TextIO,
    stdout: TextIO,
    chat_key: str = "terminal",
    reloader: ContentReloader | None = None,
) -> None:
    """Run one conversation until EOF or /quit; with `reloader`, /reload loads the dialogs
    and catalogs again (edit, /reload, go on: how an operator tries an edit)."""
    interactive = stdin.isatty()

    def show(turn: Turn | None) -> None:
        # Printed once committed: what the user sees is always what was kept.
        if turn is not None:
            stdout.write(render_turn(turn, advisor.localizer) + "\n")
            stdout.flush()

    show(await advisor.handle(chat_key, Start(locale), locale=locale))
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
        if isinstance(event, SlashCommand):
            await _carry_out(advisor, event, chat_key, stdout, locale, reloader)
        elif event is not None:
            show(await advisor.handle(chat_key, event))


async def _carry_out(
    advisor: Advisor,
    command: SlashCommand,
    chat_key: str,
    stdout: TextIO,
    locale: str,
    reloader: ContentReloader | None = None,
) -> None:
    """The commands the channel carries out: at a terminal the operator is the user, so
    /forget needs no confirmation button and /stats and /reload are allowed."""
    session = await advisor.store.load(chat_key)
    locale = session.locale if session is not None else locale
    if command.name is Slash.FORGET:
        await advisor.forget(chat_key)
        lines = [advisor.localizer.text(advisor.engine.message("forget_done"), locale)]
    elif command.name is Slash.STATS:
        active = (await advisor.store.stats()).get("active_conversations", 0)
        report = build_report(await advisor.store.events(), advisor.engine.spec, active=active)
        title = advisor.localizer.text(advisor.engine.message("stats_title"), locale)
        lines = [title, render_text(report, advisor.localizer, locale)]
    elif command.name is Slash.RELOAD:
        if reloader is None:  # a chat without a folder to reload from (tests, tools)
            lines = [advisor.localizer.text(advisor.engine.message("unknown_command"), locale)]
        else:
            reloaded = await reloader.reload()
            lines = [reloaded.report(advisor.localizer, locale, limit=sys.maxsize)]
    elif command.name is Slash.REMINDERS:
        # Listed only: at a terminal nothing sends them (reminders go out on Telegram).
        listed = await ReminderDesk(advisor.store, lambda: advisor.engine).listing(chat_key)
        say = advisor.localizer.text
        lines = [say(advisor.engine.message("reminders_title" if listed else "reminders_none"), locale)]
        lines += [say(item.line, locale) for item in listed]
    else:  # pragma: no cover - every other command is an engine event
        return
    stdout.write("\n".join(lines) + "\n\n")
    stdout.flush()


def run(locale: str, settings: Settings) -> None:
    """Blocking entry point for `python -m bot chat`."""

    async def main() -> None:
        advisor = await build_advisor(settings)
        try:
            reloader = ContentReloader.for_settings(advisor, settings)
            await chat(advisor, locale, sys.stdin, sys.stdout, reloader=reloader)
        finally:
            await advisor.store.close()

    asyncio.run(main())
