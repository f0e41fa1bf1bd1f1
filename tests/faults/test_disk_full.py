"""The disk fills up under a SQLite webhook: no commit can succeed, so no update is
acknowledged and nothing is sent (each redelivery answered 503, /healthz 503, the
process alive); once there is room again, Telegram's next redelivery is applied and
every user gets each reply exactly once.

Before the outbox, each redelivery sent the reply again before failing to commit it
(issue 11: one user got the same reply 8 times) while /healthz stayed 200.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.durability_support import Bots, FaultyStandIn, SqliteDatabase
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    deliver_all,
    disk_full,
    extra_messages,
    health_turns,
    reference,
    seconds_summary,
    settle,
    start_piped_webhook,
    stop_process,
)
from tests.support.tg_harness import message_update, new_chat_id

USERS = 3
# Telegram's redeliveries while the disk is full (each one, before the outbox, a duplicate).
REDELIVERIES = 5
STARTED, FULL = ("/start",), "1"


def test_disk_full_refuses_updates_then_each_reply_once(
    standin: FaultyStandIn, sqlite_database: SqliteDatabase, tmp_path: Path, figures: Record
) -> None:
    env = Bots(standin, sqlite_database, tmp_path).env()
    folder = tmp_path / "webhook"
    folder.mkdir()
    # Output through a pipe: the size limit below is for the database, not the log.
    hook = start_piped_webhook(env, folder)
    try:
        expected = reference(hook, standin, sqlite_database, [*STARTED, FULL]).replies
        users = [new_chat_id() for _ in range(USERS)]
        for chat in users:
            converse(hook, chat, STARTED)
        settle(standin, sqlite_database, {chat: len(expected) - 1 for chat in users})

        updates = [message_update(chat, FULL) for chat in users]
        with disk_full(hook.process.pid, sqlite_database) as limit:
            refused = deliver_all(hook, updates, attempts=REDELIVERIES, pause=0.3, timeout=30)
            unhealthy_after = health_turns(hook, 503)
            alive = hook.process.poll() is None
            sent_while_full = sum(extra_messages(standin, chat, expected[:-1]) for chat in users)
        # Room again: Telegram goes on delivering until it is acknowledged.
        acknowledged = deliver_all(hook, updates, timeout=30)
        settle(standin, sqlite_database, {chat: len(expected) for chat in users})

        statuses = [status for delivery in refused for status in delivery.statuses]
        figures("file size limit (bytes)", limit)
        figures("statuses while full", sorted(set(statuses)))
        figures("503 latency while full", seconds_summary([s for d in refused for s in d.seconds]))
        figures("/healthz 503 after (s, from the last redelivery)", unhealthy_after)
        figures("messages sent while full", sent_while_full)
        figures("most copies of one reply", 1 + max(extra_messages(standin, chat, expected) for chat in users))

        assert alive, "a write beyond the limit must fail, not kill the process"
        assert sent_while_full == 0, "nothing is sent before it is committed"
        assert all(delivery.acknowledged for delivery in acknowledged)
        for chat in users:
            assert_exactly_once(standin, chat, expected)
        assert statuses == [503] * (USERS * REDELIVERIES), "nothing is acknowledged that was not committed"
        assert unhealthy_after is not None, "/healthz must fail while the store cannot commit"
        assert health_turns(hook, 200) is not None, "/healthz recovers with the store"
    finally:
        hook.client.close()
        stop_process(hook.process)
