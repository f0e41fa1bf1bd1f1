"""SQLite-only behaviour: URLs, files, other processes on the same file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.store.base import StoreUnavailable
from bot.store.sqlite import SqliteStore, parse_sqlite_url

from .conftest import HASH_KEY
from .test_contract import increment, new_session

ROOT = Path(__file__).resolve().parents[2]


def test_url_forms() -> None:
    assert parse_sqlite_url("sqlite:///data/bot.sqlite3") == ("data/bot.sqlite3", {})
    assert parse_sqlite_url("sqlite:////var/lib/bot.db") == ("/var/lib/bot.db", {})
    assert parse_sqlite_url("sqlite:///a%20b.db?synchronous=normal") == (
        "a b.db",
        {"synchronous": "normal"},
    )
    for bad in ("sqlite://x.db", "sqlite:///", "sqlite:///:memory:", "sqlite:///x.db?foo=1"):
        with pytest.raises(ValueError):
            parse_sqlite_url(bad)
    with pytest.raises(ValueError):
        SqliteStore("sqlite:///x.db?synchronous=off")


async def test_relative_path_folder_created_and_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore("sqlite:///data/nested/bot.sqlite3", hash_key=HASH_KEY)
    await store.open()
    try:
        async with store.conversation("chat", 1) as conv:
            conv.save(new_session())
    finally:
        await store.close()
    path = tmp_path / "data" / "nested" / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # a folder where the file should be
    store = SqliteStore(f"sqlite:///{tmp_path / 'taken'}", hash_key=HASH_KEY)
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert not await store.ping()


async def test_write_lock_held_elsewhere_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    store = SqliteStore(f"sqlite:///{path}", hash_key=HASH_KEY, busy_timeout=0.2)
    await store.open()
    try:
        async with store.conversation("chat", 1) as conv:
            conv.save(new_session(n=1))
        # Another process (a backup tool, a stuck script) holds the write lock.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable) as caught:
                async with store.conversation("chat", 2) as conv:
                    conv.save(new_session(n=2))
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await store.load("chat") == new_session(n=1)
        async with store.conversation("chat", 2) as conv:
            assert not conv.duplicate
            conv.save(new_session(n=2))
        assert await store.load("chat") == new_session(n=2)
    finally:
        await store.close()


async def test_write_from_outside_the_lock_is_not_overwritten(tmp_path: Path) -> None:
    """The last line of defence when byte-range locks do not work (network file
    systems): a block never commits over a write it did not see."""
    path = tmp_path / "bot.sqlite3"
    store = SqliteStore(f"sqlite:///{path}", hash_key=HASH_KEY)
    await store.open()
    try:
        async with store.conversation("chat", 1) as conv:
            conv.save(new_session(n=1))
        with pytest.raises(StoreUnavailable, match="changed by another process"):
            async with store.conversation("chat", 2) as conv:
                with sqlite3.connect(path) as raw:
                    raw.execute("UPDATE sessions SET updated_at = '2999-01-01T00:00:00.000000+00:00'")
                raw.close()
                conv.save(new_session(n=2))
        session = await store.load("chat")
        assert session is not None and session.slots["n"] == 1
    finally:
        await store.close()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from bot.store.sqlite import SqliteStore
    from bot.engine.session import Session

    async def main(url, first_update, count):
        store = SqliteStore(url, hash_key=b"k")
        await store.open()
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for update_id in range(first_update, first_update + count):
            async with store.conversation("shared", update_id) as conv:
                session = conv.session or Session(flow="f", state="s", locale="en")
                n = int(session.slots.get("n", 0))
                await asyncio.sleep(0.002)  # the other process runs meanwhile
                conv.save(session.evolve(slots={"n": n + 1}))
        await store.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


async def test_two_processes_take_turns_on_a_chat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(first), "25"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for first in (1, 1001)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.to_thread(worker.stdout.readline)
            assert line.strip() == "ready", worker.stderr.read() if worker.stderr else line
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        for worker in workers:
            code = await asyncio.to_thread(worker.wait, 30)
            assert code == 0, worker.stderr.read() if worker.stderr else code
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    store = SqliteStore(url, hash_key=HASH_KEY)
    await store.open()
    try:
        session = await store.load("shared")
        assert session is not None and session.slots["n"] == 50
    finally:
        await store.close()


async def test_two_stores_in_one_process_share_chat_locks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    stores = [SqliteStore(url, hash_key=HASH_KEY) for _ in range(2)]
    for store in stores:
        await store.open()
    await stores[1].close()  # closing one must not drop the other's cross-process locks
    await stores[1].open()
    try:
        await asyncio.gather(*(increment(stores[i % 2], "chat", i) for i in range(40)))
        session = await stores[0].load("chat")
        assert session is not None and session.slots["n"] == 40
    finally:
        for store in stores:
            await store.close()
