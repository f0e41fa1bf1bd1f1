"""The Telegram test harness: the real webhook process, real update JSON, and a simulated
user who sends updates over HTTP and reads their chat from the stand-in Bot API.

Shared by the tests and by bench/webhook_throughput.py."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.tg_standin import BOT_ID, BOT_USERNAME, Message, StandIn

__all__ = ["BOT_ID", "Message", "StandIn"]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAHtestTOKENforTHEstandINserver_0123456"
SECRET = "test-secret_0123456789abcdef"
# The operator (ADMIN_IDS) of the shared webhook process in the Telegram suite.
ADMIN_ID = 777_000_111

_update_ids = itertools.count(1000)
_user_message_ids = itertools.count(5_000_000)
_chat_ids = itertools.count(910_000_001)
_query_ids = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def next_update_id() -> int:
    return next(_update_ids)


def new_chat_id() -> int:
    return next(_chat_ids)


def bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Overdue Advisor", "username": BOT_USERNAME}


def user_json(user_id: int, language: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Ann"}
    if language:
        user["language_code"] = language
    return user


def message_update(
    chat_id: int,
    text: str,
    *,
    language: str | None = "en",
    chat_type: str = "private",
    user_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """A text message as Telegram posts it (commands carry a bot_command entity)."""
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "Ann"
    else:
        chat["title"] = "Debt help group"
    message: dict[str, Any] = {
        "message_id": next(_user_message_ids),
        "from": user_json(user_id or abs(chat_id), language),
        "chat": chat,
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(" ", 1)[0]
        message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return {"update_id": update_id or next_update_id(), "message": message}


def callback_update(
    standin: StandIn,
    chat_id: int,
    message: Message,
    data: str,
    *,
    language: str | None = "en",
    update_id: int | None = None,
) -> dict[str, Any]:
    """A button press as Telegram posts it: the message the button was on, and its data."""
    return {
        "update_id": update_id or next_update_id(),
        "callback_query": {
            "id": str(4_000_000_000 + next(_query_ids)),
            "from": user_json(chat_id, language),
            "message": standin.message_json(message),
            "chat_instance": str(-chat_id),
            "data": data,
        },
    }


@dataclass
class Webhook:
    """The running `python -m bot webhook` process."""

    url: str
    base: str
    secret: str
    database: Path
    log: Path
    process: subprocess.Popen[bytes]
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    database_url: str = ""

    def outbox(self, chat_id: int) -> int:
        """How many committed messages of the chat are not sent yet (its outbox rows)."""
        key = f"tg:{chat_id}"
        if self.database_url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as conn:
                return int(conn.execute("SELECT count(*) FROM outbox WHERE chat_key = ?", (key,)).fetchone()[0])
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE chat_key = %s", (key,)).fetchone()
            return int(row[0]) if row else 0

    def wait_delivered(self, chat_id: int, timeout: float = 20) -> None:
        """Wait until the chat's outbox is empty: every reply committed so far was sent
        (the webhook answers once the reply is committed; it is sent right after)."""
        deadline = time.monotonic() + timeout
        while self.outbox(chat_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"the chat's outbox was not delivered in {timeout} s:\n{self.logs()[-3000:]}")
            time.sleep(0.005)

    def post(
        self,
        update: Any,
        *,
        secret: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"X-Telegram-Bot-Api-Secret-Token": self.secret if secret is None else secret}
        if secret == "":
            sent = {}
        sent.update(headers or {})
        if content is not None:
            return self.client.post(self.url, content=content, headers=sent)
        return self.client.post(self.url, json=update, headers=sent)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(self.base + path)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def webhook_env(api_url: str, tmp: Path, port: int, **overrides: str) -> dict[str, str]:
    path = f"/tg/{os.urandom(6).hex()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_", "PORT", "HOST"))
    }
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        WEBHOOK_URL=f"http://127.0.0.1:{port}{path}",
        WEBHOOK_SECRET=SECRET,
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp / 'bot.sqlite3'}",
        # The stand-in is not Telegram: no need to hold to 30 messages a second here.
        TELEGRAM_MAX_RATE="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def start_webhook(env: dict[str, str], tmp: Path, timeout: float = 90, *, output: int | None = None) -> Webhook:
    """Start `python -m bot webhook` and wait until /healthz answers 200 (generous: under
    coverage, with replicas starting together on a busy machine, loading takes a while).
    Its output goes to webhook.log in `tmp`, or to the file descriptor `output`."""
    port = int(env["PORT"])
    log_path = tmp / "webhook.log"
    log = log_path.open("wb") if output is None else output
    process = subprocess.Popen([sys.executable, "-m", "bot", "webhook"], cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    hook = Webhook(
        url=env["WEBHOOK_URL"],
        base=base,
        secret=env["WEBHOOK_SECRET"],
        database=Path(env["DATABASE_URL"].removeprefix("sqlite:///")),
        log=log_path,
        process=process,
        database_url=env["DATABASE_URL"],
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the webhook exited with {process.returncode}:\n{hook.logs()}")
        try:
            if hook.get("/healthz").status_code == 200:
                return hook
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the webhook did not become healthy:\n{hook.logs()}")


def stop_webhook(hook: Webhook) -> int:
    hook.client.close()
    if hook.process.poll() is None:
        hook.process.send_signal(signal.SIGTERM)
        try:
            hook.process.wait(20)
        except subprocess.TimeoutExpired:
            hook.process.kill()
            hook.process.wait()
    return hook.process.returncode


class TgUser:
    """One Telegram user in a private chat with the bot, typing and pressing buttons."""

    def __init__(self, hook: Webhook, standin: StandIn, language: str | None = "en") -> None:
        self.hook = hook
        self.standin = standin
        self.chat_id = new_chat_id()
        self.language = language
        self.query_ids: list[str] = []

    def send(self, text: str, *, update_id: int | None = None) -> httpx.Response:
        update = message_update(self.chat_id, text, language=self.language, update_id=update_id)
        response = self.hook.post(update)
        assert response.status_code == 200, response.text
        self.hook.wait_delivered(self.chat_id)
        return response

    def press(self, label: str) -> httpx.Response:
        """Press the button labelled `label` on the latest message that has it."""
        for message in reversed(self.messages()):
            for text, data in message.buttons:
                if text == label:
                    return self.press_data(message, data)
        raise AssertionError(f"no button {label!r}; buttons: {self.buttons()}")

    def press_data(self, message: Message, data: str) -> httpx.Response:
        update = callback_update(self.standin, self.chat_id, message, data, language=self.language)
        self.query_ids.append(update["callback_query"]["id"])
        response = self.hook.post(update)
        assert response.status_code == 200, response.text
        self.hook.wait_delivered(self.chat_id)
        return response

    def messages(self) -> list[Message]:
        return self.standin.messages(self.chat_id)

    def last(self) -> Message:
        return self.messages()[-1]

    def buttons(self) -> list[str]:
        """The labels on the latest message that has a keyboard."""
        for message in reversed(self.messages()):
            if message.buttons:
                return [label for label, _ in message.buttons]
        return []

    def calls(self, method: str | None = None) -> list[Any]:
        return self.standin.calls(method, self.chat_id)

    def answers(self) -> list[Any]:
        """answerCallbackQuery calls for this user's presses (they carry no chat id)."""
        return [
            call
            for call in self.standin.calls("answerCallbackQuery")
            if str(call.params.get("callback_query_id")) in self.query_ids
        ]
