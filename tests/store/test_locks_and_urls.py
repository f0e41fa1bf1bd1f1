"""Backend-free pieces: per-chat lock bookkeeping, hashing, choosing a store by URL."""

from __future__ import annotations

import asyncio

import pytest

from bot.store import open_store
from bot.store._common import KeyedLocks, chat_hash, read_session
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore


async def test_locks_are_dropped_when_nobody_needs_them() -> None:
    locks = KeyedLocks()
    order: list[int] = []

    async def use(key: str, i: int) -> None:
        async with locks.hold(key):
            order.append(i)
            await asyncio.sleep(0)

    await asyncio.gather(*(use(f"chat-{i % 100}", i) for i in range(1000)))
    assert len(order) == 1000
    assert len(locks) == 0  # a million chats seen does not mean a million locks kept


async def test_cancelled_waiter_does_not_leak_its_lock() -> None:
    locks = KeyedLocks()
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("chat"):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()

    async def waiter() -> None:
        async with locks.hold("chat"):
            pass

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(waiter(), timeout=0.05)
    release.set()
    await task
    assert len(locks) == 0


def test_chat_hash_is_keyed_hmac() -> None:
    assert chat_hash(b"k1", "chat") != chat_hash(b"k2", "chat")
    assert len(chat_hash(b"k1", "chat")) == 64


def test_unreadable_sessions_are_damaged_not_errors() -> None:
    for raw in (
        "{not json",
        "[]",
        '"text"',
        '{"flow": "f"}',
        '{"flow": "f", "state": "s", "locale": "en", "history": ["x"]}',
        b"\xff",
    ):
        assert read_session(raw) == (None, True)


def test_open_store_by_scheme() -> None:
    assert isinstance(open_store("sqlite:///data/bot.sqlite3"), SqliteStore)
    assert isinstance(open_store("postgresql://user@db/bot"), PostgresStore)
    assert isinstance(open_store("postgres://user:secret@db:5432/bot"), PostgresStore)
    with pytest.raises(ValueError, match="mysql") as caught:
        open_store("mysql://user:hunter2@db/bot")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="scheme"):
        open_store("data/bot.sqlite3")
