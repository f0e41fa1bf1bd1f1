"""The faults themselves, before the tests that use them: the stand-in fails the way it
is told to (late answers, 500s, one chat's 429) and nothing else, seen by PTB's own
client; the TCP proxy cuts and restores connections."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from tests.support.durability_support import FaultyStandIn
from tests.support.tcp_proxy import Cut, TcpProxy
from tests.support.tg_harness import TOKEN

CHAT, OTHER = 515151, 626262


def bot_for(standin: FaultyStandIn, read_timeout: float = 5.0) -> Bot:
    return Bot(TOKEN, base_url=f"{standin.url}/bot", request=HTTPXRequest(read_timeout=read_timeout))


def texts(standin: FaultyStandIn, chat: int) -> list[str]:
    return [message.text for message in standin.messages(chat)]


async def test_late_answer_is_delivered_though_the_bot_times_out(standin: FaultyStandIn) -> None:
    chat = CHAT + 1
    standin.answer_late(30, count=1, chat_id=chat)
    async with bot_for(standin, read_timeout=0.3) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(chat, "first")
        # The user has it; only the answer is late (the next call is answered at once).
        assert texts(standin, chat) == ["first"]
        assert [call.params["text"] for call in standin.calls("sendMessage", chat)] == ["first"]
        await bot.send_message(chat, "second")
        await bot.send_message(OTHER, "elsewhere")
    assert texts(standin, chat) == ["first", "second"]
    assert standin.late_answered == 1
    standin.release_held()


async def test_late_answers_by_probability_repeat_with_the_seed(standin: FaultyStandIn) -> None:
    async def pattern(chat: int) -> list[bool]:
        standin.answer_late(0.05, probability=0.3, seed=7)
        late = []
        async with bot_for(standin) as bot:
            for number in range(16):
                before = standin.late_answered
                await bot.send_message(chat, f"m{number}")
                late.append(standin.late_answered > before)
        standin.clear_faults()
        return late

    first, second = await pattern(CHAT + 2), await pattern(CHAT + 3)
    assert first == second
    assert 0 < sum(first) < len(first)


async def test_500_on_the_second_call_sends_nothing(standin: FaultyStandIn) -> None:
    chat = CHAT + 4
    standin.fail_call("sendMessage", 2, chat_id=chat)
    async with bot_for(standin) as bot:
        await bot.send_message(chat, "one")
        await bot.send_message(OTHER, "not counted: another chat")
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(chat, "two")
        await bot.send_message(chat, "two again")
    assert texts(standin, chat) == ["one", "two again"]


async def test_500_after_recording_sends_it(standin: FaultyStandIn) -> None:
    chat = CHAT + 5
    standin.fail_call("sendMessage", 1, chat_id=chat, record=True)
    async with bot_for(standin) as bot:
        with pytest.raises(NetworkError):
            await bot.send_message(chat, "sent, though the answer says otherwise")
    assert texts(standin, chat) == ["sent, though the answer says otherwise"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_wait_is_one_chats_alone(standin: FaultyStandIn) -> None:
    chat = CHAT + 6
    standin.flood_wait(chat, 1)
    async with bot_for(standin) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(chat, "too soon")
        assert caught.value._retry_after.total_seconds() == 1
        await bot.send_message(OTHER, "others are served")
        deadline = time.monotonic() + 5
        while True:  # until the wait is over (about a second)
            try:
                await bot.send_message(chat, "after the wait")
                break
            except RetryAfter:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    assert texts(standin, chat) == ["after the wait"]


def test_control_routes_steer_a_standin_in_another_process(standin: FaultyStandIn) -> None:
    chat = CHAT + 7
    api = f"{standin.url}/bot{TOKEN}/sendMessage"
    with httpx.Client(timeout=5) as client:
        assert client.post(f"{standin.url}/_standin/error", json={"method": "sendMessage", "chat_id": chat}).is_success
        assert client.post(api, json={"chat_id": chat, "text": "x"}).status_code == 500
        assert client.post(f"{standin.url}/_standin/flood", json={"chat_id": chat, "retry_after": 30}).is_success
        refused = client.post(api, json={"chat_id": chat, "text": "x"})
        assert refused.status_code == 429
        assert refused.json()["parameters"]["retry_after"] in (29, 30)
        faults = client.get(f"{standin.url}/_standin/faults").json()
        assert faults["refused_5xx"] >= 1 and faults["refused_429"] >= 1
        assert client.post(f"{standin.url}/_standin/clear").is_success
        assert client.post(api, json={"chat_id": chat, "text": "x"}).status_code == 200


# --- the TCP proxy --------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    proxy = TcpProxy("127.0.0.1", server.server_address[1]).start()
    yield proxy
    proxy.close()
    server.shutdown()
    server.server_close()


def _echo(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_proxy_refuses_then_forwards_again(proxy: TcpProxy) -> None:
    assert _echo(proxy.port) == b"ping"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as live:
        live.sendall(b"a")
        assert live.recv(10) == b"a"
        proxy.cut(Cut.REFUSE)
        with contextlib.suppress(ConnectionResetError):  # closed or reset: the server "died"
            assert live.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        _echo(proxy.port)
    proxy.restore()
    assert _echo(proxy.port, b"back") == b"back"


def test_proxy_holds_new_connections_while_cut(proxy: TcpProxy) -> None:
    proxy.cut(Cut.HOLD)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as held:
        held.sendall(b"hello?")
        held.settimeout(0.3)
        with pytest.raises(TimeoutError):
            held.recv(10)  # accepted, never answered
        proxy.restore()
        held.settimeout(2)
        with contextlib.suppress(ConnectionResetError):  # dropped at restore: closed or reset
            assert held.recv(10) == b""
    assert _echo(proxy.port) == b"ping"
