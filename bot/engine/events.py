"""What a user can do: the events a channel turns its input into."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Start:
    """A new conversation (or `/start`). `locale` is the user's language if known."""

    locale: str | None = None


@dataclass(frozen=True)
class Said:
    """The user typed something."""

    text: str


@dataclass(frozen=True)
class Chose:
    """The user pressed option `index` of the question shown at session `version`."""

    version: int
    index: int


class CommandName(StrEnum):
    BACK = "back"
    RESTART = "restart"
    LANGUAGE = "language"
    HELP = "help"
    CALCULATOR = "calculator"
    # The reminder questions (/remind), and a check-in the advisor promised (sent by
    # bot/reminders, never typed): each enters the state settings.yaml names for it.
    REMIND = "remind"
    CHECKIN = "checkin"


@dataclass(frozen=True)
class Command:
    """A slash command. `argument` is what followed it (`/language en`)."""

    name: CommandName
    argument: str = ""


Event = Start | Said | Chose | Command
