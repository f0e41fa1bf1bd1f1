"""A store seeded with known conversations, for the funnel statistics' tests.

Each conversation is played through the real engine; each turn's funnel events are
counted through the store API (`conv.count` inside `store.conversation`), as the
advisor counts them, on a real SQLite file with a driven clock (each turn 10 s later).
The chats take turns, so events of different chats interleave as they do live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.engine.commands import parse_command
from bot.engine.engine import Engine
from bot.engine.events import Event, Said, Start
from bot.stats.funnel import funnel_events
from bot.store.sqlite import SqliteStore

START = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
TURN = timedelta(seconds=10)


@dataclass
class DrivenClock:
    """The store's clock: moved by the test, never by time passing."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Chat:
    """One chat's lines, in order (`/start`, `/restart`, `/back` or text)."""

    key: str
    lines: list[str]
    locale: str = "en"
    sent: int = field(default=0, init=False)


def _event(line: str, locale: str) -> Event:
    command = parse_command(line)
    if command is None:
        return Said(line)
    event = command.event(locale)
    assert event is not None, f"{line} is not a conversation command"
    return event


async def play(store: SqliteStore, engine: Engine, clock: DrivenClock, chats: list[Chat]) -> None:
    """Every chat's lines, round robin: one turn of each chat in turn."""
    while any(chat.sent < len(chat.lines) for chat in chats):
        for chat in chats:
            if chat.sent == len(chat.lines):
                continue
            event = _event(chat.lines[chat.sent], chat.locale)
            chat.sent += 1
            async with store.conversation(chat.key) as conv:
                before = conv.session
                if before is None:
                    fresh = engine.new_session(chat.locale)
                    turn = engine.handle(fresh, Start(chat.locale))
                else:
                    turn = engine.handle(before, event)
                if turn.changed or before is None:
                    conv.save(turn.session)
                for count in funnel_events(engine, event, turn, before):
                    conv.count(count.name, count.data)
            clock.now += TURN


async def count_once(store: SqliteStore, clock: DrivenClock, chat_key: str, name: str) -> None:
    """One event outside a conversation's turns (a reminder's follow-up outcome)."""
    async with store.conversation(chat_key) as conv:
        conv.count(name, {})
    clock.now += TURN


# The conversations of `seeded_store`, and what the funnel must say about them.
CARDHOLDER_TO_PLAN = [
    "/start",
    "1",  # I have an overdue repayment
    "credit card",
    "45",
    "15000",
    "I lost my job",  # fills income_stable: the income question is skipped
    "no",  # knew the due date? no
    "yes",  # impulse shopping? yes
    "maybe",  # other loans: not an option, a re-prompt
    "none",
    "no",  # keeps a budget? no -> the plan
]
HUABEI_STOPS_AT_AMOUNT = ["/start", "1", "huabei", "two weeks"]
STAFF_TO_THE_END = ["/start", "2", "1", "120", "skip"]
# One chat, two conversations: the first stops at the product, the second at the role.
RESTARTED = ["/start", "1", "/restart"]
BACK_AND_REANSWER = ["/start", "1", "another loan", "3 weeks", "/back", "200"]


def seeded_chats() -> list[Chat]:
    return [
        Chat("tg:1", CARDHOLDER_TO_PLAN),
        Chat("tg:2", HUABEI_STOPS_AT_AMOUNT),
        Chat("tg:3", STAFF_TO_THE_END),
        Chat("tg:4", RESTARTED),
        Chat("tg:5", BACK_AND_REANSWER),
    ]


async def seed(path: Path, engine: Engine) -> datetime:
    """`seeded_chats` and three follow-up outcomes in a new SQLite file; returns the time
    just after the last event."""
    clock = DrivenClock()
    store = SqliteStore(f"sqlite:///{path}", hash_key=b"funnel-test", clock=clock)
    await store.open()
    try:
        await play(store, engine, clock, seeded_chats())
        for key, outcome in (("tg:1", "agreed"), ("tg:2", "agreed"), ("tg:5", "no_answer")):
            await count_once(store, clock, key, f"followup.{outcome}")
    finally:
        await store.close()
    return clock.now
