"""The slash commands, written once: what each is called, what it does, how the menu describes it.

Every channel reads a typed line through `parse_command` (the terminal chat, Telegram,
the dialog tests), so `/lang` works wherever `/language` does, and the Telegram command
menu (setMyCommands) is built from `COMMANDS`, not from the translated help text.

A later command (`/calculator`, `/remind`, `/reminders`, `/reload`) is one more row in
`COMMANDS` and one more `Slash` member, plus the code that carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.engine.events import Command, CommandName, Event, Start


def N_(msgid: str) -> str:
    """Mark `msgid` for translation; the localizer translates it where it is shown.

    Named as pybabel's extractor expects (`N_` is one of its default keywords)."""
    return msgid


class Slash(StrEnum):
    """Every command a user can send, by its canonical name."""

    START = "start"
    RESTART = "restart"
    BACK = "back"
    LANGUAGE = "language"
    HELP = "help"
    FORGET = "forget"
    STATS = "stats"
    CALCULATOR = "calculator"
    REMIND = "remind"
    REMINDERS = "reminders"
    RELOAD = "reload"


@dataclass(frozen=True)
class CommandSpec:
    """One command: its name, other names, menu description (a msgid), and who carries it out.

    `engine` is the engine event it becomes; None means the channel carries it out
    (`/start` starts a conversation, `/forget` erases, `/stats` counts).
    """

    name: Slash
    description: str
    aliases: tuple[str, ...] = ()
    engine: CommandName | None = None
    # Only ADMIN_IDS may use it; to everyone else it is an unknown command.
    admin_only: bool = False
    # Listed in Telegram's command menu.
    menu: bool = True


# The menu shows them in this order.
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(Slash.START, N_("Start the conversation")),
    CommandSpec(Slash.RESTART, N_("Start over"), engine=CommandName.RESTART),
    CommandSpec(Slash.BACK, N_("Go back one question"), engine=CommandName.BACK),
    CommandSpec(
        Slash.LANGUAGE, N_("Switch between Chinese and English"), aliases=("lang",), engine=CommandName.LANGUAGE
    ),
    CommandSpec(Slash.HELP, N_("What I can do"), engine=CommandName.HELP),
    CommandSpec(Slash.CALCULATOR, N_("Repayment calculator"), aliases=("calc",), engine=CommandName.CALCULATOR),
    CommandSpec(Slash.REMIND, N_("Set up a monthly repayment reminder"), engine=CommandName.REMIND),
    CommandSpec(Slash.REMINDERS, N_("My reminders: see or cancel them")),
    CommandSpec(Slash.FORGET, N_("Erase everything I know about you")),
    CommandSpec(Slash.STATS, N_("Anonymous usage counts"), admin_only=True, menu=False),
    # The dialogs and catalogs loaded again (as on SIGHUP); the admin is told what failed.
    CommandSpec(Slash.RELOAD, N_("Load the edited dialogs and translations again"), admin_only=True, menu=False),
)

_BY_NAME: dict[str, CommandSpec] = {name: spec for spec in COMMANDS for name in (spec.name.value, *spec.aliases)}


@dataclass(frozen=True)
class SlashCommand:
    """A command as typed: which one, and what followed it (`/language en` → "en")."""

    spec: CommandSpec
    argument: str = ""

    @property
    def name(self) -> Slash:
        """The canonical name (`/lang` → Slash.LANGUAGE)."""
        return self.spec.name

    def event(self, locale: str | None = None) -> Event | None:
        """The engine event this command is: `Start` for /start, a `Command` for the engine's
        own commands, None for those the channel carries out itself (/forget, /stats)."""
        if self.spec.name is Slash.START:
            return Start(locale)
        if self.spec.engine is not None:
            return Command(self.spec.engine, self.argument)
        return None


def is_command(text: str) -> bool:
    """Does `text` look like a slash command (known or not)?"""
    return text.lstrip().startswith("/")


def parse_command(text: str) -> SlashCommand | None:
    """`/back`, `/lang en`, `/start@SomeBot payload` → the command; None for anything else,
    including a command nobody knows (the engine answers that one as "unknown command")."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, argument = stripped[1:].partition(" ")
    # In a menu tap Telegram may append the bot's @username: `/help@overdue_bot`.
    name = head.split("@", 1)[0].lower()
    spec = _BY_NAME.get(name)
    return SlashCommand(spec, argument.strip()) if spec is not None else None


def menu() -> list[CommandSpec]:
    """The commands listed in Telegram's menu, in order."""
    return [spec for spec in COMMANDS if spec.menu]
