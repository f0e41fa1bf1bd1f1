"""The real webhook process under an attacker's or a broken client's traffic: idle
connections, slow bodies, disconnects and malformed updates. It keeps answering Telegram
and /healthz, never answers 500, and logs no traceback for any of it."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.tg_harness import SECRET, StandIn, Webhook, message_update, new_chat_id, next_update_id
from tests.web.conftest import READ_TIMEOUT

IDLE_CONNECTIONS = 1000


def _address(hook: Webhook) -> tuple[str, int]:
    parts = urlsplit(hook.base)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _closed(sock: socket.socket) -> bool:
    """Has the server closed `sock`? (Non-blocking: data or EOF, else still open.)"""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _raw_post_head(hook: Webhook, length: int, secret: str = SECRET) -> bytes:
    path = urlsplit(hook.url).path
    return (
        f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_response(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def test_a_thousand_idle_connections_neither_starve_nor_stay(webhook: Webhook, standin: StandIn) -> None:
    opened: dict[socket.socket, float] = {}
    for _ in range(IDLE_CONNECTIONS):
        opened[socket.create_connection(_address(webhook), timeout=10)] = time.monotonic()
    chat = new_chat_id()
    answers: dict[str, tuple[int, float]] = {}

    def ask() -> None:  # while the idle connections are all open
        with httpx.Client(timeout=10) as client:
            started = time.monotonic()
            health = client.get(webhook.base + "/healthz")
            answers["healthz"] = health.status_code, time.monotonic() - started
            started = time.monotonic()
            update = client.post(
                webhook.url, json=message_update(chat, "/start"), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            )
            answers["update"] = update.status_code, time.monotonic() - started

    asking = threading.Thread(target=ask)
    asking.start()
    lived: list[float] = []  # how long each idle connection was kept
    try:
        deadline = time.monotonic() + READ_TIMEOUT + 30
        while len(lived) < IDLE_CONNECTIONS:
            assert time.monotonic() < deadline, f"{IDLE_CONNECTIONS - len(lived)} idle connections still open"
            for sock in [s for s in opened if _closed(s)]:
                lived.append(time.monotonic() - opened.pop(sock))
                sock.close()
            time.sleep(0.05)
    finally:
        for sock in opened:
            sock.close()
        asking.join(30)
    print(
        f"\n{IDLE_CONNECTIONS} idle connections: /healthz in {answers['healthz'][1] * 1000:.0f} ms, "
        f"an update in {answers['update'][1] * 1000:.0f} ms; idle ones closed after "
        f"{min(lived):.2f}-{max(lived):.2f} s (deadline {READ_TIMEOUT} s)"
    )
    assert answers["healthz"][0] == 200 and answers["update"][0] == 200
    assert standin.wait_for(lambda: bool(standin.messages(chat)), timeout=20)  # the user got the reply
    assert min(lived) >= READ_TIMEOUT * 0.9  # none closed before the deadline
    assert webhook.get("/healthz").status_code == 200


def test_a_body_sent_a_byte_a_second_is_408_and_closed(webhook: Webhook) -> None:
    body = json.dumps(message_update(new_chat_id(), "/start")).encode()
    with socket.create_connection(_address(webhook), timeout=10) as sock:
        sock.sendall(_raw_post_head(webhook, len(body)))
        started = time.monotonic()
        sock.settimeout(1.0)
        answer = b""
        for byte in body:  # a byte a second until the server has had enough
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        rest, _ = _read_response(sock, timeout=10)
        closed = time.monotonic() - started
    print(f"\na 1 byte/s body: 408 and closed after {closed:.1f} s (deadline {READ_TIMEOUT} s)")
    assert (answer + rest).startswith(b"HTTP/1.1 408")
    assert READ_TIMEOUT * 0.9 <= closed < READ_TIMEOUT + 10


def test_the_secret_is_checked_before_the_body_is_read(webhook: Webhook) -> None:
    with socket.create_connection(_address(webhook), timeout=10) as sock:
        sock.sendall(_raw_post_head(webhook, 500, secret="wrong-secret-0123456789"))
        sock.settimeout(READ_TIMEOUT)  # answered at once: no byte of the body was needed
        assert sock.recv(65536).startswith(b"HTTP/1.1 403")
        # The body never comes: the connection goes at the next head's deadline.
        _, closed = _read_response(sock, timeout=READ_TIMEOUT + 10)
    assert closed >= READ_TIMEOUT * 0.9


def test_a_client_leaving_mid_body_is_not_an_error(webhook: Webhook) -> None:
    before = len(webhook.logs())
    with socket.create_connection(_address(webhook), timeout=10) as sock:
        sock.sendall(_raw_post_head(webhook, 1000) + b'{"update_id": 1, "mess')
    counted = 'overdue_webhook_rejected_total{reason="disconnected"} 1.0'
    deadline = time.monotonic() + 20
    while counted not in webhook.get("/metrics").text:  # the server has seen it go
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert webhook.get("/healthz").status_code == 200
    logged = webhook.logs()[before:]
    assert "ERROR" not in logged and "Traceback" not in logged, logged


def _message(**fields: object) -> dict[str, object]:
    message: dict[str, object] = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": 424242, "type": "private"},
        "from": {"id": 424242, "is_bot": False, "first_name": "Ann"},
        "text": "/start",
    }
    message.update(fields)
    return {"update_id": next_update_id(), "message": message}


def _nested(depth: int) -> bytes:
    return b'{"update_id": 1, "message": ' + b"[" * depth + b"]" * depth + b"}"


MALFORMED: dict[str, bytes] = {
    "text is a number": json.dumps(_message(text=123)).encode(),
    "text is a list": json.dumps(_message(text=["/start"])).encode(),
    "1,000 deep": _nested(1000),
    "100 deep": _nested(100),
    "100,000 deep": _nested(100_000),
    "not JSON": b"{this is not json",
    "not UTF-8": b'{"update_id": 1, "x": "\xff\xfe"}',
    "an array": b"[1, 2, 3]",
    "a string": b'"update"',
    "empty": b"",
    "update id too big": b'{"update_id": ' + b"9" * 5000 + b"}",
    "update id a float": b'{"update_id": 1e400}',
    "huge chat id": json.dumps(_message(chat={"id": 10**30, "type": "private"})).encode(),
    "chat id a float": json.dumps(_message(chat={"id": 1e300, "type": "private"})).encode(),
    "chat a string": json.dumps(_message(chat="424242")).encode(),
    "from a number": json.dumps(_message(**{"from": 5})).encode(),
    "from id a string": json.dumps(_message(**{"from": {"id": "me", "is_bot": False, "first_name": "A"}})).encode(),
    "chat type unknown": json.dumps(_message(chat={"id": 5, "type": "spaceship"})).encode(),
    "date a word": json.dumps(_message(date="yesterday")).encode(),
    "entities garbage": json.dumps(_message(entities=[{"offset": "x", "length": -1, "type": 7}])).encode(),
    "callback data a number": json.dumps(
        {
            "update_id": next_update_id(),
            "callback_query": {"id": 5, "from": {"id": 5, "is_bot": False, "first_name": "A"}, "data": 7},
        }
    ).encode(),
    "language a number": json.dumps(
        _message(**{"from": {"id": 424243, "is_bot": False, "first_name": "A", "language_code": 5}})
    ).encode(),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_updates_are_acknowledged_or_refused_never_500(webhook: Webhook, body: bytes) -> None:
    response = webhook.post(None, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400), response.text
    assert webhook.get("/healthz").status_code == 200
    assert "Exception in ASGI application" not in webhook.logs()


def test_a_text_that_is_not_text_gets_no_apology(webhook: Webhook, standin: StandIn) -> None:
    update = _message(
        text=123, chat={"id": 515151, "type": "private"}, **{"from": {"id": 515151, "is_bot": False, "first_name": "B"}}
    )
    assert webhook.post(None, content=json.dumps(update).encode()).status_code == 200
    webhook.wait_delivered(515151)
    assert standin.messages(515151) == [], "an update we cannot read is ignored, not answered with an error"


def test_json_nesting_is_bounded_at_64(webhook: Webhook) -> None:
    shallow = b'{"update_id": ' + str(next_update_id()).encode() + b', "x": ' + b"[" * 60 + b"]" * 60 + b"}"
    assert webhook.post(None, content=shallow).status_code == 200  # deep enough for any real update
    deep = webhook.post(None, content=_nested(65))
    assert deep.status_code == 400 and "nested deeper than 64" in deep.text
