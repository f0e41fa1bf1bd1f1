"""The store interface: what the channels need to keep conversations durable.

Two implementations (SQLite, PostgreSQL) pass one contract test suite. A channel
handles an update like this::

    async with store.conversation(chat_key, update_id) as conv:
        if conv.duplicate:
            return                      # seen before: acknowledge, apply nothing
        turn = engine.handle(conv.session or engine.new_session(...), event)
        conv.save(turn.session)         # committed, with the update id, on exit ...
        for payload in render(turn):
            conv.send(payload)          # ... with the replies, into the chat's outbox
    delivery.wake(chat_key)             # sent after the commit, never inside the block

A failed commit sends nothing (the update is delivered again). A sender (Telegram:
`bot.channels.telegram.delivery`) claims the chat's outbox (`claim_outbox`), sends in
order and removes each message once sent (`mark_sent`); nothing holds a connection or
a transaction while it talks to Telegram.

`conversation` serialises everything on one chat key, across tasks and across
replicas (row lock or equivalent); different keys proceed in parallel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from bot.engine.session import Session


class StoreUnavailable(RuntimeError):
    """The database could not be reached or failed mid-operation; nothing was committed."""


class Change(Enum):
    """What a `conversation` block decided to write when it exits."""

    NOTHING = "nothing"  # the session stays as it was (the update id is still recorded)
    SAVE = "save"  # `Conversation.saved` replaces the session
    ERASE = "erase"  # everything about the chat goes (`/forget`)


@dataclass
class Conversation:
    """One chat's session inside a `Store.conversation` block: the channel reads it and
    says what to write (`save`, `erase`); the store reads `change` and `saved` at the end."""

    chat_key: str
    session: Session | None
    # The update id was already applied: do nothing, answer nothing.
    duplicate: bool = False
    # The stored row could not be read back (corrupt or from an older schema).
    damaged: bool = False
    change: Change = field(default=Change.NOTHING, init=False)
    saved: Session | None = field(default=None, init=False)
    # What to send once committed (channel-specific JSON objects, in order) and the
    # anonymous statistics events to count, both committed with the session.
    outbox: list[dict[str, Any]] = field(default_factory=list, init=False)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list, init=False)
    # Reminders and check-ins planned, answered or cancelled, in order, committed likewise.
    reminders: list[ReminderChange] = field(default_factory=list, init=False)

    def save(self, session: Session) -> None:
        """Keep `session` when the block exits without an exception."""
        self.change, self.saved = Change.SAVE, session

    def erase(self) -> None:
        """Forget this chat entirely when the block exits (`/forget`); the chat's unsent
        outbox goes too, and nothing else queued in this block is kept."""
        self.change, self.saved = Change.ERASE, None

    def send(self, payload: dict[str, Any]) -> None:
        """Queue `payload` in the chat's outbox; committed with the block, sent after."""
        self.outbox.append(payload)

    def count(self, name: str, data: dict[str, Any]) -> None:
        """Count anonymous event `name` in the block's transaction (the chat only hashed)."""
        self.events.append((name, data))

    def remind(self, change: ReminderChange) -> None:
        """Change the chat's reminders in the block's transaction (`bot.reminders`)."""
        self.reminders.append(change)


@dataclass(frozen=True)
class OutboxMessage:
    """One committed, unsent message of a chat's outbox, claimed by a sender."""

    id: int
    chat_key: str
    payload: dict[str, Any]
    # Failed deliveries so far (for backoff, and to give up on one that never goes).
    attempts: int


@dataclass(frozen=True)
class EventRecord:
    """One counted anonymous event, as `Store.events` returns it (for funnel statistics)."""

    name: str
    # HMAC-SHA256 of the chat key (see `bot.store`): events of one chat share it, and
    # nothing maps it back to the chat without the hash key.
    chat_hash: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Reminder:
    """A reminder or check-in row, due at `due_at` (bot/reminders reads `kind` and
    `payload`: the schedule the person chose and the occurrence that comes next)."""

    id: int
    chat_key: str
    due_at: datetime
    payload: dict[str, Any]
    kind: str = "monthly"


# What a conversation block changes in the chat's reminders, committed with the block.
@dataclass(frozen=True)
class PlanReminder:
    """A new row; `replaces` first deletes the chat's rows of the same kind (one
    pending check-in per chat)."""

    kind: str
    due_at: datetime
    payload: dict[str, Any]
    replaces: bool = False


@dataclass(frozen=True)
class CloseReminders:
    """Delete the chat's rows of `kind`; when there was one, count anonymous `event`
    (an answered check-in is counted once, however often the answer is given)."""

    kind: str
    event: str | None = None


@dataclass(frozen=True)
class DropReminder:
    """Delete one of the chat's rows (cancelled from the list)."""

    reminder_id: int


@dataclass(frozen=True)
class MoveReminder:
    """Give one of the chat's rows a new occurrence, if it is still due at `was_due_at`;
    otherwise the reminder loop changed it meanwhile and nothing is committed."""

    reminder_id: int
    was_due_at: datetime
    due_at: datetime
    payload: dict[str, Any]


ReminderChange = PlanReminder | CloseReminders | DropReminder | MoveReminder


@dataclass(frozen=True)
class Firing:
    """What one due row becomes, decided by `bot.reminders` inside the store's claim:
    messages for the chat's outbox, the row's next state (`kind` None deletes it), the
    conversation moved (a check-in asks its question) and anonymous events to count."""

    outbox: tuple[dict[str, Any], ...] = ()
    kind: str | None = None
    due_at: datetime | None = None
    payload: dict[str, Any] | None = None
    session: Session | None = None
    events: tuple[str, ...] = ()


# Called for each claimed row with the chat's session (None: there is none); pure.
Fire = Callable[[Reminder, Session | None], Firing]


@dataclass(frozen=True)
class Fired:
    """What one claim did: how many rows it fired, and the chats whose outbox got
    messages (in order, each once) for the sender to wake."""

    claimed: int
    chats: tuple[str, ...] = ()


class Store(ABC):
    """Durable sessions, processed update ids, reminders and anonymous events."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent, safe with concurrent replicas)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the database answers (for /healthz)."""

    @abstractmethod
    def conversation(self, chat_key: str, update_id: int | None = None) -> AbstractAsyncContextManager[Conversation]:
        """Lock `chat_key`, load its session and, on a clean exit, commit what was saved
        together with `update_id` as processed."""

    @abstractmethod
    async def probe_write(self) -> None:
        """Commit a tiny write (for /healthz); raises `StoreUnavailable` when the store
        cannot commit (disk full, read-only, down)."""

    # -- the outbox: committed in `conversation`, delivered by a sender -------------

    @abstractmethod
    async def beat(self, owner: str) -> None:
        """Record that sender `owner` is alive (every few seconds). Its claims stay
        live only while it beats: once it has not for the store's ``owner_timeout``
        (a crash), other senders may take its chats over before its leases end."""

    @abstractmethod
    async def claim_outbox(self, chat_key: str, owner: str, lease: timedelta, limit: int = 50) -> list[OutboxMessage]:
        """Claim the chat's unsent messages, oldest first, for `owner` until `lease` from
        now; [] while another owner holds a live claim on the chat (lease not ended and
        the owner beating, see `beat`) or the chat is deferred (so one chat is sent by
        one sender at a time, in order, across replicas)."""

    @abstractmethod
    async def release_outbox(self, owner: str) -> int:
        """Give up all of `owner`'s claims (a sender stopping cleanly), no attempt
        counted; returns how many messages were released."""

    @abstractmethod
    async def mark_sent(self, *message_ids: int) -> None:
        """The messages went out (or were given up on): remove them from the outbox, in
        one transaction (senders of many chats share one commit)."""

    @abstractmethod
    async def defer_outbox(self, chat_key: str, until: datetime) -> None:
        """Release the chat's claimed messages, counting one more failed attempt, and let
        nobody claim them before `until` (a 429's retry_after, a backoff)."""

    @abstractmethod
    async def pending_chats(self, now: datetime, older_than: timedelta, limit: int = 100) -> list[str]:
        """Chats with unsent messages nobody may be sending: unclaimed for `older_than`
        (a crash after commit), whose lease or deferral has passed, or whose owner
        stopped beating."""

    @abstractmethod
    async def load(self, chat_key: str) -> Session | None:
        """Read a session without locking (for tools and tests)."""

    @abstractmethod
    async def record_event(self, name: str, chat_key: str, data: dict[str, Any]) -> None:
        """Count an anonymous event; the chat is kept only as a keyed hash."""

    @abstractmethod
    async def events(self, since: datetime | None = None) -> list[EventRecord]:
        """Events recorded at `since` or later (all when None), oldest first."""

    # -- reminders and check-ins: planned in `conversation`, fired by bot.reminders ---

    @abstractmethod
    async def add_reminder(
        self, chat_key: str, due_at: datetime, payload: dict[str, Any], kind: str = "monthly"
    ) -> int:
        """Plan a reminder outside a conversation (tools, benchmarks); returns its id."""

    @abstractmethod
    async def fire_reminders(self, now: datetime, limit: int, fire: Fire) -> Fired:
        """In one transaction: claim up to `limit` rows due at `now`, oldest first, and
        apply `fire(row, session)` to each (outbox, row, session, events). Rows another
        replica is claiming are left to it, so each is fired once."""

    @abstractmethod
    async def reminders(self, chat_key: str) -> list[Reminder]:
        """The chat's reminders and check-ins, soonest first."""

    @abstractmethod
    async def drop_reminders(self, chat_key: str) -> int:
        """Switch off all of the chat's reminders and check-ins (it blocked the bot); how many."""

    @abstractmethod
    async def purge_idle(self, idle_since: datetime) -> int:
        """Delete sessions not touched since `idle_since`; returns how many."""

    @abstractmethod
    async def stats(self) -> dict[str, int]:
        """Event counts by name, and the number of active conversations."""
