"""PostgreSQL turns read-only for a while (a failover in progress, a full disk on the
server, an operator's maintenance): every connection can read, none can commit. No
update is acknowledged and nothing is sent meanwhile (503 to each redelivery, /healthz
503); once it is writable again, Telegram's next redelivery is applied and every user
gets each reply exactly once.

Before the outbox, each redelivery sent the reply again before failing to commit it
(issue 11: 11 copies of one reply in 10 s) while /healthz stayed 200.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.durability_support import Bots, Database, FaultyStandIn, PostgresDatabase
from tests.support.fault_support import (
    Delivery,
    PostgresFaults,
    Record,
    assert_exactly_once,
    converse,
    deliver,
    deliver_all,
    extra_messages,
    health_turns,
    reference,
    seconds_summary,
    settle,
)
from tests.support.tg_harness import message_update, new_chat_id

USERS = 3
READ_ONLY_FOR = 6.0  # seconds
REDELIVERY_EVERY = 1.0  # seconds between Telegram's redeliveries, here
STARTED, WRITE = ("/start",), "1"


def test_read_only_postgres_refuses_updates_then_each_reply_once(
    pg_bots: Bots, standin: FaultyStandIn, pg_database: Database, postgres_url: str, figures: Record
) -> None:
    assert isinstance(pg_database, PostgresDatabase)
    faults = PostgresFaults(postgres_url, pg_database)
    hook = pg_bots.start()
    expected = reference(hook, standin, pg_database, [*STARTED, WRITE]).replies
    users = [new_chat_id() for _ in range(USERS)]
    for chat in users:
        converse(hook, chat, STARTED)
    settle(standin, pg_database, {chat: len(expected) - 1 for chat in users})

    deliveries = [Delivery(message_update(chat, WRITE)) for chat in users]
    health: list[int] = []
    faults.read_only(True)
    try:
        ends = time.monotonic() + READ_ONLY_FOR
        with ThreadPoolExecutor(USERS) as pool:
            while time.monotonic() < ends:
                # One round of Telegram's redeliveries, then a look at the health check.
                list(pool.map(lambda d: deliver(hook, d.update, attempts=1, timeout=30, delivery=d), deliveries))
                health.append(hook.get("/healthz").status_code)
                time.sleep(REDELIVERY_EVERY)
        sent_while_read_only = sum(extra_messages(standin, chat, expected[:-1]) for chat in users)
    finally:
        faults.read_only(False)
    acknowledged = deliver_all(hook, [d.update for d in deliveries], timeout=30)
    settle(standin, pg_database, {chat: len(expected) for chat in users})

    statuses = [status for delivery in deliveries for status in delivery.statuses]
    figures("redeliveries while read-only", len(statuses))
    figures("statuses while read-only", sorted(set(statuses)))
    figures("503 latency while read-only", seconds_summary([s for d in deliveries for s in d.seconds]))
    figures("/healthz while read-only, round by round", health)
    figures("messages sent while read-only", sent_while_read_only)
    figures("most copies of one reply", 1 + max(extra_messages(standin, chat, expected) for chat in users))

    assert sent_while_read_only == 0, "nothing is sent before it is committed"
    assert all(delivery.acknowledged for delivery in acknowledged)
    for chat in users:
        assert_exactly_once(standin, chat, expected)
    assert set(statuses) == {503}, "nothing is acknowledged that was not committed"
    # It may keep its last probe's answer for a moment, then fails until the end.
    assert 503 in health and 200 not in health[health.index(503) :], "/healthz must fail while the store cannot commit"
    assert health_turns(hook, 200) is not None, "/healthz recovers with the store"
