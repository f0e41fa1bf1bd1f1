"""PostgreSQL goes away under a running webhook (a TCP proxy between them is cut: live
connections reset, then new ones refused, as when the server stops, or accepted and
never answered, as when it hangs or the network drops packets). Each webhook POST is
answered 503 within 5 s, so Telegram retries instead of piling up requests, and
/healthz says 503; once PostgreSQL is back, the redelivered updates are applied once
and every reply arrives once.

Before, each request waited for the pool's 30 s before its 503 (issue 11).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.durability_support import Bots, Database, FaultyStandIn
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    deliver_all,
    extra_messages,
    health_turns,
    reference,
    seconds_summary,
    settle,
)
from tests.support.tcp_proxy import Cut, TcpProxy
from tests.support.tg_harness import message_update, new_chat_id

USERS = 3
STARTED, NEXT = ("/start",), "1"
# The bound: Telegram should hear "try again" well before it gives up itself.
ANSWER_WITHIN = 5.0


@pytest.fixture
def proxy(pg_database: Database) -> Iterator[TcpProxy]:
    """A cuttable proxy in front of the test database's server."""
    parts = urlsplit(pg_database.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield proxy
    proxy.close()


def _through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    user, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user + '@' if user else ''}127.0.0.1:{proxy.port}"))


@pytest.mark.parametrize("cut", [Cut.REFUSE, Cut.HOLD], ids=["refused", "hanging"])
def test_postgres_down_is_503_within_5s_then_each_reply_once(
    cut: Cut, proxy: TcpProxy, pg_bots: Bots, standin: FaultyStandIn, pg_database: Database, figures: Record
) -> None:
    env = pg_bots.env()
    env["DATABASE_URL"] = _through(proxy, pg_database.url)
    hook = pg_bots.start(env)
    expected = reference(hook, standin, pg_database, [*STARTED, NEXT]).replies
    users = [new_chat_id() for _ in range(USERS)]
    for chat in users:
        converse(hook, chat, STARTED)
    settle(standin, pg_database, {chat: len(expected) - 1 for chat in users})

    updates = [message_update(chat, NEXT) for chat in users]
    proxy.cut(cut)
    try:
        with ThreadPoolExecutor(1) as pool:
            # /healthz watched while the updates are being refused.
            health_check = pool.submit(health_turns, hook, 503)
            refused = deliver_all(hook, updates, attempts=1, timeout=60)
            unhealthy_after = health_check.result()
        sent_while_down = sum(extra_messages(standin, chat, expected[:-1]) for chat in users)
    finally:
        proxy.restore()
    # Telegram delivers again what it heard 503 for.
    acknowledged = deliver_all(hook, updates, timeout=60)
    settle(standin, pg_database, {chat: len(expected) for chat in users})

    statuses = [status for delivery in refused for status in delivery.statuses]
    latencies = [seconds for delivery in refused for seconds in delivery.seconds]
    figures("statuses while down", sorted(set(statuses)))
    figures("503 latency while down", seconds_summary(latencies))
    figures("/healthz 503 after (s, from the cut)", unhealthy_after)
    figures("deliveries after restore", seconds_summary([s for d in acknowledged for s in d.seconds]))
    figures("most copies of one reply", 1 + max(extra_messages(standin, chat, expected) for chat in users))

    assert sent_while_down == 0
    assert all(delivery.acknowledged for delivery in acknowledged)
    for chat in users:
        assert_exactly_once(standin, chat, expected)
    assert set(statuses) == {503}
    assert max(latencies) < ANSWER_WITHIN, f"503 after {max(latencies):.1f} s"
    assert unhealthy_after is not None, "/healthz must fail while the store is unreachable"
    assert health_turns(hook, 200) is not None, "/healthz recovers with the store"
