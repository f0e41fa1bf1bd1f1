"""PostgreSQL-only behaviour: dropped connections, a dead server, lock waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest

from bot.store.base import StoreUnavailable
from bot.store.postgres import PostgresStore

from .conftest import PostgresHarness
from .test_contract import holding, increment, new_session


@pytest.fixture
def pg(make_harness: Callable[[str], PostgresHarness]) -> PostgresHarness:
    return make_harness("postgres")


async def test_connection_killed_mid_block_raises_store_unavailable(pg: PostgresHarness) -> None:
    store = await pg.open_new()
    async with store.conversation("chat", 1) as conv:
        conv.save(new_session(n=1))

    with pytest.raises(StoreUnavailable) as caught:
        async with store.conversation("chat", 2) as conv:
            conv.save(new_session(n=2))
            # The server process serving this block dies (failover, admin, OOM killer).
            assert await pg.terminate_open_transactions() == 1
            await asyncio.sleep(0.05)
    assert isinstance(caught.value.__cause__, psycopg.Error)

    # Nothing half-written, and the pool replaced the dead connection.
    assert await store.load("chat") == new_session(n=1)
    async with store.conversation("chat", 2) as conv:
        assert not conv.duplicate, "update 2 was not committed, so it is not a duplicate"
        conv.save(new_session(n=2))
    assert await store.load("chat") == new_session(n=2)
    assert await store.ping()


async def test_pool_replaces_connections_killed_while_idle(pg: PostgresHarness) -> None:
    """A database restart or failover kills idle pooled connections; the next update
    must not fail because of it."""
    store = await pg.open_new(min_size=2)
    async with store.conversation("chat", 1) as conv:
        conv.save(new_session(n=1))
    await pg.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
        pg.schema,
    )
    await asyncio.sleep(0.05)
    assert await store.ping()
    await increment(store, "chat", 2)
    session = await store.load("chat")
    assert session is not None and session.slots["n"] == 2


async def test_unreachable_server_is_store_unavailable() -> None:
    # Nothing listens on port 1; no TEST_DATABASE_URL needed.
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert time.monotonic() - started < 10
    assert not await store.ping()


async def test_a_hung_replica_does_not_stall_a_chat_forever(pg: PostgresHarness) -> None:
    holder = await pg.open_new()
    impatient = await pg.open_new(lock_timeout=0.2)
    async with holding(holder, "chat", 1, n=1):
        with pytest.raises(StoreUnavailable, match="55P03"):  # lock_not_available
            await increment(impatient, "chat", 2)
    await increment(impatient, "chat", 2)
    session = await impatient.load("chat")
    assert session is not None and session.slots["n"] == 2


async def test_cancelled_wait_on_another_replica_leaves_the_chat_usable(
    pg: PostgresHarness,
) -> None:
    """A waiter cancelled while the server makes it wait for the chat's lock."""
    first = await pg.open_new()
    second = await pg.open_new(max_size=1)
    async with holding(first, "chat", 1, n=1):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(increment(second, "chat", 2), timeout=0.2)
    # The only pooled connection of `second` was the cancelled one: it must be usable.
    await asyncio.wait_for(increment(second, "chat", 3), timeout=5)
    session = await second.load("chat")
    assert session is not None and session.slots["n"] == 2


def test_schema_names_are_checked() -> None:
    with pytest.raises(ValueError):
        PostgresStore("postgresql://localhost/x", schema='x"; DROP TABLE sessions; --')
