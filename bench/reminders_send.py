"""10,000 reminders due at 09:00: how long they take to reach Telegram under its rate limit,
and the peak send rate.

    .venv/bin/python -m bench.reminders_send [--reminders 10000] [--rate 30] [--store sqlite|postgres]

The real path, in one process: the store's reminder rows (all due at the same 09:00),
the reminder loop claiming them in batches into the outbox (`bot.reminders.loop`), the
outbox's sender (`Delivery`) sending through the real Bot API client with its rate
limiter (TELEGRAM_MAX_RATE, `--rate`), to the stand-in Bot API (tests/support/tg_standin.py)
on loopback. The clock the loop schedules by is fixed at 09:00:00 so every row is due.

Prints the time from 09:00 until the last reminder was accepted, the mean rate, the
peak rate over any one second (from the stand-in's own timestamps of the calls it
accepted), how many calls Telegram would have refused with 429 (the stand-in counts
them), and whether any chat got its reminder twice or not at all. PostgreSQL is used
with `--store postgres` and TEST_DATABASE_URL (a throw-away schema).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

from bot.channels.telegram.app import build_bot
from bot.channels.telegram.delivery import Delivery
from bot.channels.telegram.reminders import TelegramReminders
from bot.channels.telegram.sender import TelegramSender
from bot.config import Settings
from bot.reminders.firing import Firer, FiringPolicy
from bot.reminders.loop import ReminderLoop, rate_for
from bot.reminders.rows import Kind, MonthlyRow
from bot.reminders.schedule import Monthly, next_occurrence
from bot.runtime import build_engine
from bot.store.base import Store
from tests.support.tg_harness import TOKEN, StandIn

NINE = datetime(2025, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: every row is due then
FIRST_CHAT = 900_000_000


def rows(count: int) -> list[tuple[str, str, str, str]]:
    """(chat key, kind, due at, payload JSON) of `count` reminders due at 09:00."""
    import json

    schedule = Monthly(15, 3, clock_time(9), "Asia/Shanghai")
    occurrence = next_occurrence(schedule, NINE.replace(hour=0))
    assert occurrence.at == NINE
    payload = json.dumps(MonthlyRow(schedule, "zh_CN", occurrence).to_payload())
    due = NINE.isoformat(timespec="microseconds")
    return [(f"tg:{FIRST_CHAT + n}", Kind.MONTHLY.value, due, payload) for n in range(count)]


async def sqlite_store(folder: Path, count: int) -> Store:
    from bot.store.sqlite import SqliteStore

    path = folder / "bench.sqlite3"
    store = SqliteStore(f"sqlite:///{path}")
    await store.open()
    with sqlite3.connect(path) as conn:  # setup, not measured: one transaction
        conn.executemany("INSERT INTO reminders (chat_key, kind, due_at, payload) VALUES (?, ?, ?, ?)", rows(count))
    conn.close()
    return store


async def postgres_store(count: int) -> tuple[Store, str]:
    import psycopg

    from bot.store.postgres import PostgresStore

    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        sys.exit("--store postgres needs TEST_DATABASE_URL=postgresql://...")
    schema = f"bench_reminders_{uuid.uuid4().hex[:10]}"
    store = PostgresStore(url, schema=schema)
    await store.open()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f'SET search_path TO "{schema}"')
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO reminders (chat_key, kind, due_at, payload) VALUES (%s, %s, %s, %s::jsonb)", rows(count)
            )
    return store, schema


def peak_per_second(stamps: list[float]) -> int:
    """The most calls in any window of one second (the stamps sorted)."""
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(count: int, rate: float, kind: str) -> None:
    standin = StandIn(TOKEN).start()
    settings = Settings.from_env(
        "chat", {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": standin.url, "TELEGRAM_MAX_RATE": str(rate)}
    )
    engine, localizer = build_engine()
    schema = ""
    with tempfile.TemporaryDirectory() as folder:
        if kind == "postgres":
            store, schema = await postgres_store(count)
        else:
            store = await sqlite_store(Path(folder), count)
        bot = build_bot(settings)
        await bot.initialize()
        delivery = Delivery(store, TelegramSender(bot).perform)
        telegram = TelegramReminders(lambda: engine, lambda: localizer)
        firer = Firer(lambda: engine, telegram.render, FiringPolicy())
        started = time.monotonic()
        loop = ReminderLoop(store, firer, delivery.wake, clock=lambda: NINE, rate=rate_for(rate))
        print(f"{count:,} reminders due at 09:00 ({kind}), TELEGRAM_MAX_RATE={rate:g}, loop pace {loop.rate:g}/s")
        await delivery.start()
        loop.start()
        last_report = started
        while len(standin.calls("sendMessage")) < count:
            await asyncio.sleep(0.5)
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                sent = len(standin.calls("sendMessage"))
                print(f"  {last_report - started:6.0f} s: {sent:,} sent")
        calls = standin.calls("sendMessage")
        took = max(c.at for c in calls) - started
        await loop.stop()
        await delivery.stop()
        await bot.shutdown()
        refused = [r for r in standin.refused() if "Too Many Requests" in r[2]]
        per_chat = Counter(c.params.get("chat_id") for c in calls)
        await store.close()
        if schema:
            import psycopg

            url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    standin.stop()
    stamps = sorted(c.at for c in calls)
    print(f"all {len(calls):,} sent in {took:.1f} s: mean {len(calls) / took:.1f} msg/s")
    print(f"peak over any 1 s: {peak_per_second(stamps)} msg/s (limit {rate:g})")
    print(f"429 answers: {len(refused)}; chats reminded twice: {sum(1 for n in per_chat.values() if n > 1)};")
    print(f"chats not reminded: {count - len(per_chat)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0, help="TELEGRAM_MAX_RATE, messages per second")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.reminders, args.rate, args.store))


if __name__ == "__main__":
    main()
