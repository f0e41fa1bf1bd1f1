"""The server's own bounds, on uvicorn with a trivial app (no bot): the head deadline,
the idle keep-alive, and the cap on open connections. Deadlines here are half a second;
the webhook process tests (test_webhook_limits.py) check the same with the real bot."""

from __future__ import annotations

import logging
import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from bot.web.server import (
    FD_RESERVE,
    LIMIT_CONCURRENCY,
    MAX_OPEN_CONNECTIONS,
    BoundedH11Protocol,
    connection_limits,
    raise_open_files_limit,
)
from tests.support.tg_harness import free_port

DEADLINE = 0.5
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request with 200 "hi", without reading a body."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"hi"})


@contextmanager
def serving(max_open: int = 100) -> Iterator[int]:
    """uvicorn with the bounded protocol on a thread; yields its port."""
    port = free_port()
    config = uvicorn.Config(
        hello,
        host="127.0.0.1",
        port=port,
        http=BoundedH11Protocol.with_limits(DEADLINE, max_open),
        lifespan="off",
        log_config=None,
        timeout_keep_alive=60,  # longer than the deadline: the deadline must be what closes
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def seconds_until_closed(sock: socket.socket, *, feed: bytes = b"", every: float = 0.0, limit: float = 10) -> float:
    """Seconds until the server closes `sock` (reading and discarding what it sends),
    feeding it `feed` a byte each `every` seconds meanwhile; fails after `limit`."""
    started = time.monotonic()
    sock.settimeout(every or 0.05)
    fed = 0
    while time.monotonic() - started < limit:
        if feed and fed < len(feed):
            try:
                sock.sendall(feed[fed : fed + 1])
            except OSError:
                return time.monotonic() - started
            fed += 1
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    raise AssertionError(f"still open after {limit} s")


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline() -> None:
    with serving() as port, connect(port) as sock:
        closed = seconds_until_closed(sock)
    assert closed >= DEADLINE * 0.9


def test_a_head_sent_a_byte_at_a_time_is_closed_at_the_deadline() -> None:
    # Bytes keep arriving, which is what disarms uvicorn's own keep-alive timer.
    trickle = b"GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"a" * 200
    with serving() as port, connect(port) as sock:
        closed = seconds_until_closed(sock, feed=trickle, every=0.05)
    assert closed >= DEADLINE * 0.9


def test_kept_alive_connections_serve_prompt_requests_then_close_when_idle() -> None:
    with serving() as port, connect(port) as sock:
        for _ in range(3):  # a pooled connection, used again within the deadline
            sock.sendall(REQUEST)
            answer = b""
            while not answer.endswith(b"hi"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(DEADLINE / 3)
        closed = seconds_until_closed(sock)
    assert closed >= DEADLINE * 0.5  # the last request was DEADLINE/3 ago


def test_a_body_still_trickling_after_the_response_is_closed_at_the_deadline() -> None:
    # The app answered without reading the body (as the webhook does without the secret).
    head = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
    with serving() as port, connect(port) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        closed = seconds_until_closed(sock, feed=b"x" * 1000, every=0.05)
    assert closed >= DEADLINE * 0.9


def test_connections_beyond_the_cap_are_closed_at_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.web.server"), serving(max_open=3) as port:
        kept = [connect(port) for _ in range(3)]
        time.sleep(0.1)  # accepted and counted
        extra = [connect(port) for _ in range(3)]
        try:
            for sock in extra:
                # Closed by the server well before any deadline could have run out.
                assert seconds_until_closed(sock, limit=DEADLINE * 0.8) < DEADLINE * 0.8
            kept[0].sendall(REQUEST)
            assert kept[0].recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            for sock in kept + extra:
                sock.close()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1, refusals  # once, not once per connection
    assert refusals[0].startswith("refused 1 connection(s): 3 are open")


def test_the_limits_fit_the_open_files() -> None:
    assert connection_limits(1_048_576) == (LIMIT_CONCURRENCY, MAX_OPEN_CONNECTIONS)
    # A small open-files limit lowers the cap, so accept() never fails for lack of files.
    assert connection_limits(1024) == (1024 - FD_RESERVE, 1024 - FD_RESERVE)
    limit, max_open = connection_limits(1_048_576)
    assert 1000 < limit <= max_open  # a thousand idle connections still leave room for requests


@pytest.mark.parametrize(
    ("soft", "hard", "raised"),
    [(1024, 65_536, 65_536), (1024, resource.RLIM_INFINITY, 1_048_576), (65_536, 65_536, 65_536)],
)
def test_the_open_files_limit_is_raised_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, raised: int
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))
    assert raise_open_files_limit() == raised
    assert set_to == ([(raised, hard)] if raised > soft else [])


def test_a_refused_raise_keeps_the_limit_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(_: int, __: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert raise_open_files_limit() == 1024
    assert "could not raise the open-files limit from 1024 to 4096" in caplog.text
