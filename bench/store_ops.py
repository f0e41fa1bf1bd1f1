"""Store throughput and memory: how many conversation blocks per second, and whether
memory stays flat as conversations pile up (sessions live in the store, not in RAM).

One operation is what a channel does per update: lock the chat, load its session,
save the next one together with the update id, commit. The outbox section compares
that commit with and without a turn's three outgoing messages in it, and what a
sender then does to deliver them (claim, and mark each sent).

    .venv/bin/python bench/store_ops.py                     # SQLite; PostgreSQL if a URL is set
    .venv/bin/python bench/store_ops.py --conversations 20000 --runs 3

PostgreSQL is measured when TEST_DATABASE_URL or DATABASE_URL (postgresql://...) is set,
in a throw-away schema that is dropped afterwards; otherwise it is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from bot.engine.session import Session, Snapshot
from bot.store.base import Store
from bot.store.sqlite import SqliteStore


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (ru_maxrss), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mib() -> float | None:
    """The resident set size right now (Linux only), in MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def session_for(i: int) -> Session:
    """A realistic mid-conversation session (a few hundred bytes of JSON)."""
    return Session(
        flow="cardholder",
        state="amount",
        locale="zh_CN",
        slots={
            "days_overdue": 45 + i % 30,
            "amount": 23000.0,
            "bank": "招商银行",
            "evidence": ["lost_job", "forgot_date"],
        },
        history=(Snapshot(flow="cardholder", state="days", slots={"days_overdue": 45}),),
        version=i,
    )


#: A turn's replies as the Telegram channel queues them: text with an inline keyboard.
REPLIES = tuple(
    {
        "method": "sendMessage",
        "text": f"第{n}步：先算清楚欠款总额和每月最低还款额。" * 3,
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "好的", "callback_data": f"a:7:{n}"}]]},
    }
    for n in range(3)
)


async def one_op(store: Store, chat_key: str, update_id: int, sends: int = 0) -> None:
    async with store.conversation(chat_key, update_id) as conv:
        version = conv.session.version + 1 if conv.session else 0
        conv.save(session_for(version))
        for payload in REPLIES[:sends]:
            conv.send(payload)


async def run_ops(store: Store, prefix: str, first_id: int, ops: int, concurrency: int, sends: int = 0) -> float:
    """`ops` conversation blocks on `ops` distinct chats, `concurrency` at a time; ops/s."""
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < ops:
            i = next_i
            next_i += 1
            await one_op(store, f"{prefix}{i}", first_id + i, sends)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ops / (time.perf_counter() - started)


async def measure(store: Store, label: str, runs: int, ops: int) -> None:
    """Median ops/s over `runs` runs, one task and 16 tasks (different chats).

    The chats exist before the timed runs, so every block loads a real session."""
    await run_ops(store, f"{label}-", 0, ops, 16)
    batch = 1
    for concurrency in (1, 16):
        rates = []
        for _ in range(runs):
            # New update ids each run: a duplicate would skip the write.
            rates.append(await run_ops(store, f"{label}-", batch * ops, ops, concurrency))
            batch += 1
        print(
            f"  {label:<10} {concurrency:>2} task(s): median {statistics.median(rates):8.0f}"
            f" ops/s   (runs: {', '.join(f'{r:.0f}' for r in rates)})"
        )


async def deliver(store: Store, prefix: str, ops: int) -> float:
    """What a sender does after each of those commits, one chat after the other:
    claim the chat's messages, mark each sent; chats/s."""
    started = time.perf_counter()
    for i in range(ops):
        for message in await store.claim_outbox(f"{prefix}{i}", "bench", timedelta(seconds=30)):
            await store.mark_sent(message.id)
    return ops / (time.perf_counter() - started)


async def measure_outbox(store: Store, label: str, runs: int, ops: int) -> None:
    """Milliseconds per commit (one task) without and with 3 outbox rows, runs
    interleaved so drift hits both alike; then the delivery of those rows. Median."""
    await run_ops(store, f"{label}-ob-", 0, ops, 1)  # the chats exist: every block loads one
    plain, queued, sent = [], [], []
    for run in range(1, runs + 1):
        first = 10_000_000 * run
        plain.append(1000 / await run_ops(store, f"{label}-ob-", first, ops, 1))
        queued.append(1000 / await run_ops(store, f"{label}-ob-", first + ops, ops, 1, sends=3))
        sent.append(1000 / await deliver(store, f"{label}-ob-", ops))
    base, with_rows = statistics.median(plain), statistics.median(queued)
    print(
        f"  {label:<10} commit: {base:.3f} ms plain, {with_rows:.3f} ms with 3 outbox rows"
        f" (+{with_rows - base:.3f} ms, x{with_rows / base:.2f}); delivery bookkeeping"
        f" (claim + 3 x mark_sent): {statistics.median(sent):.3f} ms per chat"
    )


async def bench_sqlite(folder: Path, runs: int, ops: int) -> None:
    store = SqliteStore(f"sqlite:///{folder / 'ops.sqlite3'}", hash_key=b"bench")
    await store.open()
    try:
        await measure(store, "sqlite", runs, ops)
        await measure_outbox(store, "sqlite", runs, ops)
    finally:
        await store.close()


async def bench_postgres(url: str, runs: int, ops: int) -> None:
    import psycopg

    from bot.store.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(url, schema=schema, hash_key=b"bench", max_size=16)
    try:
        await store.open()
        await measure(store, "postgresql", runs, ops)
        await measure_outbox(store, "postgresql", runs, ops)
    finally:
        await store.close()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def show_rss(label: str) -> None:
    now = current_rss_mib()
    now_text = f", current {now:.1f} MiB" if now is not None else ""
    print(f"  {label:<34} peak RSS {peak_rss_mib():.1f} MiB{now_text}")


async def bench_memory(folder: Path, conversations: int) -> None:
    """Save `conversations` distinct chats through SQLite; RSS must not grow with them."""
    store = SqliteStore(f"sqlite:///{folder / 'memory.sqlite3'}", hash_key=b"bench")
    await store.open()
    try:
        await run_ops(store, "warm-", 0, 1000, 16)
        show_rss("after 1,000 conversations (before)")
        started = time.perf_counter()
        done, step = 0, max(1, conversations // 4)
        while done < conversations:
            batch = min(step, conversations - done)
            await run_ops(store, f"chat-{done}-", 10_000_000 + done, batch, 16)
            done += batch
            show_rss(f"after {1000 + done:,} conversations")
        elapsed = time.perf_counter() - started
        stats = await store.stats()
        print(
            f"  {conversations:,} conversations in {elapsed:.1f} s"
            f" ({conversations / elapsed:.0f} ops/s); store holds"
            f" {stats['active_conversations']:,} sessions"
        )
    finally:
        await store.close()


def postgres_url() -> str | None:
    for name in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("postgresql://", "postgres://")):
            return url
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--conversations", type=int, default=100_000, help="distinct conversations saved for the memory check (100000)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; median shown (5)")
    parser.add_argument("--ops", type=int, default=2000, help="operations per run (2000)")
    args = parser.parse_args()

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        folder = Path(tmp)
        print("conversation blocks per second (load + save + update id, one commit each):")
        await bench_sqlite(folder, args.runs, args.ops)
        url = postgres_url()
        if url is None:
            print("  postgresql  skipped: set TEST_DATABASE_URL or DATABASE_URL to measure it")
        else:
            await bench_postgres(url, args.runs, args.ops)
        print(f"memory while saving {args.conversations:,} distinct conversations (SQLite):")
        await bench_memory(folder, args.conversations)


if __name__ == "__main__":
    asyncio.run(main())
