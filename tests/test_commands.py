"""The one command table: every channel reads commands the same way."""

from __future__ import annotations

import pytest

from bot.engine.commands import COMMANDS, Slash, menu, parse_command
from bot.engine.events import Command, CommandName, Start
from bot.i18n.catalog import Localizer


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("/back", Command(CommandName.BACK)),
        ("/lang en", Command(CommandName.LANGUAGE, "en")),
        ("/language  zh_CN ", Command(CommandName.LANGUAGE, "zh_CN")),
        ("/LANG", Command(CommandName.LANGUAGE)),
        ("/restart@overdue_advisor_bot", Command(CommandName.RESTART)),
        ("/help@overdue_advisor_bot extra", Command(CommandName.HELP, "extra")),
        ("/start", Start("en")),
    ],
)
def test_commands_become_the_same_engine_events_everywhere(text: str, event: object) -> None:
    command = parse_command(text)
    assert command is not None
    assert command.event("en") == event


@pytest.mark.parametrize("text", ["back", "hello /back", "/", "/unknown", "/stat", ""])
def test_what_is_not_a_known_command_is_left_to_the_conversation(text: str) -> None:
    assert parse_command(text) is None


def test_forget_and_stats_are_carried_out_by_the_channel() -> None:
    forget, stats = parse_command("/forget"), parse_command("/stats")
    assert forget is not None and forget.name is Slash.FORGET and forget.event() is None
    assert stats is not None and stats.spec.admin_only and stats.event() is None


def test_the_menu_lists_the_public_commands_in_order() -> None:
    assert [spec.name.value for spec in menu()] == [
        "start",
        "restart",
        "back",
        "language",
        "help",
        "calculator",
        "remind",
        "reminders",
        "forget",
    ]
    assert all(spec.name is not Slash.STATS for spec in menu())


def test_remind_is_the_engines_and_reminders_the_channels() -> None:
    remind, reminders = parse_command("/remind"), parse_command("/reminders")
    assert remind is not None and remind.event() == Command(CommandName.REMIND)
    assert reminders is not None and reminders.name is Slash.REMINDERS and reminders.event() is None


def test_every_name_is_taken_once() -> None:
    names = [name for spec in COMMANDS for name in (spec.name.value, *spec.aliases)]
    assert len(names) == len(set(names))


def test_every_menu_description_is_translated(localizer: Localizer) -> None:
    for locale in localizer.locales:
        if locale == "en":
            continue
        missing = localizer.missing([spec.description for spec in COMMANDS], locale)
        assert missing == [], f"add to locales/{locale}/LC_MESSAGES/messages.po: {missing}"
