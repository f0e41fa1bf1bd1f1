"""SQLite-only behaviour: URLs, files, other processes on the same file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store.base import StoreUnavailable
from bot.store.sqlite import SqliteStore, _retry_busy, connect, parse_sqlite_url

from .conftest import HASH_KEY
from .test_contract import hashed, increment, new_session

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
    assert isinstance(caught.value.__cause__, OSError)  # creating the file failed
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


def test_connections_opening_a_new_file_at_once_wait_for_each_other(tmp_path: Path) -> None:
    """Two connections switching a new file to WAL at once deadlock, and SQLite fails
    one at once ("database is locked" in 1 ms, whatever the busy timeout): the cause of
    replicas, or `stats` beside a running bot, failing to start. Threads collide like
    processes here; without the retry about 1 round in 20 fails."""
    failures: list[str] = []

    def opener(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            conn = connect(str(path), busy_timeout=5)
            try:  # what a store's migration does next
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    for round_ in range(100):
        path = tmp_path / f"new{round_}.sqlite3"
        start = threading.Barrier(4)
        threads = [threading.Thread(target=opener, args=(path, start)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == [], f"{len(failures)} opener(s) failed, e.g. {failures[:2]}"


def test_retry_busy_gives_up_at_the_timeout() -> None:
    calls: list[float] = []

    def always_locked() -> None:
        calls.append(time.monotonic())
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _retry_busy(always_locked, 0.2)
    assert len(calls) > 3 and calls[-1] - calls[0] <= 0.2
    calls.clear()

    def broken() -> None:
        calls.append(time.monotonic())
        raise sqlite3.OperationalError("no such table: x")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _retry_busy(broken, 5)
    assert len(calls) == 1, "only busy errors are retried"


def sqlite_files(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-chatlocks"))]


async def test_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    store = SqliteStore(f"sqlite:///{path}", hash_key=HASH_KEY)
    await store.open()
    try:
        async with store.conversation("chat", 1) as conv:
            conv.save(new_session())
        files = sqlite_files(path)
        assert all(f.exists() for f in files), [f.name for f in files if not f.exists()]
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o600" for f in files}
    finally:
        await store.close()


async def test_forget_leaves_no_trace_in_the_files(tmp_path: Path) -> None:
    """After /forget, while the bot keeps running (no clean stop), no byte of the
    database, its WAL or its shared-memory file holds the chat's key, its text, or the
    hash its events were counted under; other chats' later writes do not bring it back."""
    path = tmp_path / "bot.sqlite3"
    store = SqliteStore(f"sqlite:///{path}", hash_key=HASH_KEY)
    chat_key, secret = "tg:987654321", "我欠招商银行UNIQUE-8c41e2d7元"
    await store.open()
    try:
        for update_id in range(1, 4):  # several versions of the chat's rows in the WAL
            async with store.conversation(chat_key, update_id) as conv:
                conv.save(new_session(n=update_id, note=f"{secret} #{update_id}"))
                conv.send({"text": f"你说：{secret}"})
                conv.count("answered", {"state": "amount"})
            async with store.conversation(f"tg:{update_id}", 1) as conv:
                conv.save(new_session(n=update_id))
        await store.add_reminder(chat_key, datetime(2030, 1, 1, tzinfo=UTC), {"text": secret})
        traces = [chat_key.encode(), secret.encode(), hashed(chat_key).encode()]
        assert any(t in b"".join(f.read_bytes() for f in sqlite_files(path)) for t in traces)

        async with store.conversation(chat_key, 4) as conv:
            conv.erase()
        for update_id in range(5, 25):  # the bot goes on with other chats
            async with store.conversation(f"tg:{update_id % 3}", update_id) as conv:
                conv.save(new_session(n=update_id))
                conv.send({"text": "ok"})
            await store.probe_write()

        for file in sqlite_files(path):
            content = file.read_bytes()
            found = [t.decode() for t in traces if t in content]
            assert found == [], f"{file.name} still holds {found}"
        assert await store.load("tg:1") is not None
    finally:
        await store.close()


PROBE_WORKER = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from bot.store.base import StoreUnavailable
    from bot.store.sqlite import SqliteStore

    async def main(url):
        store = SqliteStore(url, hash_key=b"k")
        await store.open()
        await store.probe_write()
        # The disk is full: no file may grow (writes fail with EFBIG, not a signal).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, limits[1]))
        try:
            await store.probe_write()
            print("probe_write succeeded on a full disk")
        except StoreUnavailable as exc:
            print("unavailable:", exc)
        print("ping:", await store.ping())
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        await store.probe_write()
        print("recovered")
        await store.close()

    asyncio.run(main(sys.argv[1]))
    """
)


def test_probe_write_fails_when_the_disk_is_full(tmp_path: Path) -> None:
    """What /healthz's write probe is for: reads (ping) still work, commits do not."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-c", PROBE_WORKER, url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("unavailable: SQLite failed"), lines
    assert lines[1:] == ["ping: True", "recovered"]
