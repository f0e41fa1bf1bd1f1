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


# -- failing fast, and never showing the password --------------------------------

PASSWORD = "pg-Secret-pw-4711"  # a test value: the test server trusts local users


class ToggledProxy:
    """A TCP forwarder to the test server that the test can take down and bring back:
    a database outage (refused connections, pooled ones cut) without touching the
    server other tests use."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Refuse new connections and cut every open one."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()


async def test_server_down_fails_fast_and_recovers(pg: PostgresHarness, caplog: pytest.LogCaptureFixture) -> None:
    """While PostgreSQL is down an update fails within the 5 s Telegram should wait for
    its 503, and the store works again once it is back; no log line shows the password."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    target = conninfo_to_dict(pg.conninfo)
    proxy = ToggledProxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 5432)))
    await proxy.up()
    conninfo = make_conninfo(pg.conninfo, host="127.0.0.1", port=proxy.port, password=PASSWORD)
    store = PostgresStore(conninfo, schema=pg.schema, hash_key=b"k", min_size=2)
    caplog.set_level("DEBUG")
    try:
        await store.open()
        await increment(store, "chat", 1)
        await proxy.down()

        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await increment(store, "chat", 2)
        failed_after = time.monotonic() - started
        assert failed_after < 5, f"an update waited {failed_after:.1f} s for a dead database"
        assert not await store.ping(timeout=0.5)

        await proxy.up()
        back = time.monotonic()
        while True:  # the pool reconnects in the background, with backoff
            try:
                await increment(store, "chat", 2)
                break
            except StoreUnavailable:
                assert time.monotonic() < back + 15, "the store did not recover"
        print(f"failed after {failed_after:.2f} s; recovered {time.monotonic() - back:.2f} s after the server")
        session = await store.load("chat")
        assert session is not None and session.slots["n"] == 2
    finally:
        await store.close()
        await proxy.down()
    shown = caplog.text + str(caught.value) + repr(caught.value.__cause__)
    assert PASSWORD not in shown
    assert "error connecting" in caplog.text  # psycopg_pool did log its attempts


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bot:{PASSWORD}%zz@db.example/bot",  # a bad %-escape
        f"postgresql://bot:{PASSWORD} x@db.example/bot",  # a space
        f"postgresql://bot:{PASSWORD}@db.example/bot?unknown=1",
    ],
)
def test_a_malformed_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="not a valid PostgreSQL connection string") as caught:
        PostgresStore(url)
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_probe_write_fails_on_a_read_only_database(pg: PostgresHarness) -> None:
    """/healthz's write probe notices what a read (ping) does not: a database that
    accepts connections and queries but no commits (a standby, a full disk's
    ``default_transaction_read_only``)."""
    from psycopg.conninfo import make_conninfo

    from .conftest import PG_URL

    database = pg.schema  # a fresh database of the same throw-away name
    admin = await psycopg.AsyncConnection.connect(PG_URL, autocommit=True)
    conninfo = make_conninfo(PG_URL, dbname=database, application_name=database)

    async def reconnect_all() -> None:
        # New sessions see the database's new default; drop the pooled ones.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )

    async with admin:
        await admin.execute(f'CREATE DATABASE "{database}"')
        store = PostgresStore(conninfo, hash_key=b"k")
        try:
            await store.open()
            await increment(store, "chat", 1)
            await store.probe_write()

            await admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
            await reconnect_all()
            with pytest.raises(StoreUnavailable, match="25006"):  # read_only_sql_transaction
                await store.probe_write()
            assert await store.ping(), "reads still work: ping alone would report healthy"
            with pytest.raises(StoreUnavailable):
                await increment(store, "chat", 2)

            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            await reconnect_all()
            await store.probe_write()
            await increment(store, "chat", 2)
        finally:
            await store.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
