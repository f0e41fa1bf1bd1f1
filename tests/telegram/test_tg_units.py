"""The adapter's parts on their own: configuration, HTML rendering and splitting,
callback data, the per-chat ordered processor, the outbox's JSON and the rate limiter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Chat, Message, Update, User
from telegram.error import RetryAfter

from bot.channels.plain import Piece, PieceKind
from bot.channels.telegram.effects import (
    AnswerPress,
    EditText,
    RemoveButtons,
    ReplaceText,
    SendChart,
    SendText,
    ShowTyping,
    chat_id_of,
    chat_key,
    decode,
    encode,
    is_cosmetic,
)
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.processor import ChatOrderedProcessor
from bot.channels.telegram.ratelimit import ChatRateLimiter, patiently, paused_error, retry_after_seconds
from bot.channels.telegram.render import (
    MAX_MESSAGE,
    ChartPhoto,
    ChoiceData,
    ForgetData,
    InvalidData,
    answered_html,
    choice_data,
    keyboard,
    pack_messages,
    parse_callback,
    pieces_html,
    question_fragments,
)
from bot.config import ConfigError, Settings, load_settings_or_exit
from tests.support.tg_standin import parse_html

GOOD = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAHtestTOKENforTHEstandINserver_0123456",
    "WEBHOOK_URL": "https://bot.example.com/tg/abc",
    "WEBHOOK_SECRET": "s" * 32,
}

# --- configuration ---------------------------------------------------------------------


def test_defaults_follow_the_operational_contract() -> None:
    settings = Settings.from_env("webhook", GOOD)
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.bot_api_base_url == "https://api.telegram.org/bot"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.database_url == "sqlite:///data/bot.sqlite3"
    assert settings.webhook_path == "/tg/abc"
    assert settings.session_ttl_days == 30
    assert settings.admin_ids == ()
    assert GOOD["TELEGRAM_BOT_TOKEN"] not in repr(settings)
    assert GOOD["WEBHOOK_SECRET"] not in repr(settings)


def test_everything_is_read() -> None:
    env = dict(
        GOOD,
        TELEGRAM_API_URL="http://botapi:8081/",
        WEBHOOK_URL="http://bot:8080/hook",
        HOST="127.0.0.1",
        PORT="9000",
        DATABASE_URL="postgresql://u@db/advisor",
        ADMIN_IDS="1, 22,333",
        SESSION_TTL_DAYS="7",
        TELEGRAM_MAX_RATE="0",
    )
    settings = Settings.from_env("webhook", env)
    # A self-hosted Bot API server may post over plain HTTP to any port.
    assert settings.telegram_api_url == "http://botapi:8081"
    assert settings.webhook_url == "http://bot:8080/hook"
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.admin_ids == (1, 22, 333)
    assert settings.session_ttl_days == 7
    assert settings.telegram_max_rate == 0


def test_every_problem_is_one_line() -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "nope",
        "WEBHOOK_URL": "http://bot.example.com:8080/x",
        "WEBHOOK_SECRET": "bad secret!",
        "PORT": "0",
        "DATABASE_URL": "mysql://x",
        "ADMIN_IDS": "12,abc",
        "SESSION_TTL_DAYS": "-1",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env("webhook", env)
    problems = caught.value.problems
    assert all("\n" not in p for p in problems)
    joined = "\n".join(problems)
    for expected in (
        "TELEGRAM_BOT_TOKEN does not look like",
        "https://",
        "port 443, 80, 88 or 8443",
        "may only contain",
        "too short",
        "PORT must be between",
        "DATABASE_URL",
        "ADMIN_IDS",
        "SESSION_TTL_DAYS",
    ):
        assert expected in joined, expected
    assert "nope" not in joined  # a credential is never echoed


def test_polling_needs_no_webhook_and_other_commands_need_nothing() -> None:
    Settings.from_env("polling", {"TELEGRAM_BOT_TOKEN": GOOD["TELEGRAM_BOT_TOKEN"]})
    Settings.from_env("chat", {})
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN is missing"):
        Settings.from_env("polling", {})
    with pytest.raises(ConfigError) as caught:
        Settings.from_env("webhook", {"TELEGRAM_BOT_TOKEN": GOOD["TELEGRAM_BOT_TOKEN"]})
    assert len(caught.value.problems) == 2  # WEBHOOK_URL and WEBHOOK_SECRET


def test_secret_length_bounds() -> None:
    Settings.from_env("webhook", dict(GOOD, WEBHOOK_SECRET="a" * 16))
    Settings.from_env("webhook", dict(GOOD, WEBHOOK_SECRET="A-z_9" * 51 + "x"))
    for bad in ("a" * 15, "a" * 257):
        with pytest.raises(ConfigError):
            Settings.from_env("webhook", dict(GOOD, WEBHOOK_SECRET=bad))


def test_load_settings_or_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings_or_exit("webhook", {})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n  - ") == 3 and "Traceback" not in err


def test_dirs_must_exist(tmp_path: Path) -> None:
    env = dict(GOOD, DIALOGS_DIR=str(tmp_path), LOCALES_DIR=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="LOCALES_DIR"):
        Settings.from_env("webhook", env)


# --- rendering -------------------------------------------------------------------------


def test_everything_is_escaped_and_wrapped() -> None:
    pieces = [
        Piece(PieceKind.HEADING, "Plan <for> you & me"),
        Piece(PieceKind.WARNING, "1 < 2"),
        Piece(PieceKind.PHRASE, "I owe ¥5,000 & want <instalments>", "Say: <this>"),
        Piece(PieceKind.RANKING, "Unstable income ▇▇▇░ 52%"),
    ]
    html = pack_messages(pieces_html(pieces) + question_fragments("Who & what?"))
    assert html == [
        "<b>Plan &lt;for&gt; you &amp; me</b>\n\n<i>1 &lt; 2</i>\n\n"
        "<b>Say: &lt;this&gt;</b>\n<code>I owe ¥5,000 &amp; want &lt;instalments&gt;</code>\n\n"
        "Unstable income ▇▇▇░ 52%\n\n<b>Who &amp; what?</b>"
    ]
    text, entities = parse_html(html[0])
    assert "I owe ¥5,000 & want <instalments>" in text
    assert {e["type"] for e in entities} == {"bold", "italic", "code"}


def test_a_5000_character_reply_is_split_at_paragraphs() -> None:
    paragraphs = [Piece(PieceKind.PARAGRAPH, f"{i} " + "word " * 210) for i in range(5)]
    messages = pack_messages(pieces_html(paragraphs))
    assert sum(len(p.text) for p in paragraphs) > 5000
    assert len(messages) == 2
    assert all(len(parse_html(m)[0]) <= MAX_MESSAGE for m in messages)
    # Cut between paragraphs, never inside one.
    assert messages[0].split("\n\n")[-1].startswith("2 ") and messages[1].startswith("3 ")


def test_one_huge_chinese_paragraph_is_cut_safely() -> None:
    piece = Piece(PieceKind.PHRASE, "还款&<" * 3000, "话术")
    messages = pack_messages(pieces_html([piece]))
    assert len(messages) >= 4
    for message in messages:
        assert len(message) <= MAX_MESSAGE
        parse_html(message)  # every part is valid HTML on its own


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(PieceKind)),
            st.text(min_size=1, max_size=3000).filter(lambda t: t.strip()),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_text_renders_into_messages_telegram_accepts(pieces: list[tuple[Any, str]]) -> None:
    rendered = pieces_html([Piece(kind, text, "Title" if kind is PieceKind.PHRASE else None) for kind, text in pieces])
    for message in pack_messages(rendered):
        visible, _ = parse_html(message)  # raises on anything Telegram would refuse
        assert len(visible) <= MAX_MESSAGE


def test_answered_question_shows_the_label_escaped() -> None:
    html = answered_html("<b>Who?</b>", "A & <B>")
    assert html == "<b>Who?</b>\n\n✅ <i>A &amp; &lt;B&gt;</i>"
    parse_html(html)


def test_callback_data() -> None:
    assert choice_data(12, 3) == "a:12:3"
    assert parse_callback("a:12:3") == ChoiceData(12, 3)
    assert parse_callback("f:yes") == ForgetData(True)
    assert parse_callback("f:no") == ForgetData(False)
    for junk in (None, "", "a:1", "a:x:1", "a:1:2:3", "f:maybe", "zzz", "a:" + "9" * 80 + ":1"):
        assert parse_callback(junk) == InvalidData()
    assert len(choice_data(999_999_999, 9999).encode()) <= 64


def test_keyboard_layout() -> None:
    short = keyboard([("Yes", "a:1:0"), ("No", "a:1:1"), ("Skip", "a:1:2")])
    assert short is not None and [len(r) for r in short.inline_keyboard] == [2, 1]
    long = keyboard([("I have an overdue repayment", "a:1:0"), ("I am bank staff", "a:1:1")])
    assert long is not None and [len(r) for r in long.inline_keyboard] == [1, 1]
    assert keyboard([]) is None


# --- per-chat ordering ---------------------------------------------------------------------


def _update(update_id: int, chat_id: int) -> Update:
    user = User(chat_id, "Ann", False)
    chat = Chat(chat_id, Chat.PRIVATE)
    message = Message(update_id, date=None, chat=chat, from_user=user, text="x")  # type: ignore[arg-type]
    return Update(update_id, message=message)


async def test_one_chat_in_order_different_chats_in_parallel() -> None:
    processor = ChatOrderedProcessor(max_backlog=100)
    seen: list[tuple[int, int]] = []
    running: dict[int, int] = {}
    overlap = {"max": 0}

    async def handle(chat: int, number: int) -> None:
        running[chat] = running.get(chat, 0) + 1
        assert running[chat] == 1, "two updates of one chat ran at once"
        overlap["max"] = max(overlap["max"], sum(running.values()))
        await asyncio.sleep(0.001 * (number % 3))
        seen.append((chat, number))
        running[chat] -= 1

    tasks = [
        asyncio.create_task(processor.process_update(_update(n, chat), handle(chat, n)))
        for n in range(30)
        for chat in (1, 2, 3)
    ]
    await asyncio.gather(*tasks)
    for chat in (1, 2, 3):
        assert [n for c, n in seen if c == chat] == list(range(30))
    assert overlap["max"] > 1  # chats did run concurrently
    assert processor.busy_chats == 0  # nothing kept for idle chats


async def test_a_flood_is_bounded_and_warned_once() -> None:
    warned: list[int] = []
    handled: list[int] = []
    gate = asyncio.Event()

    async def overflow(update: Update) -> None:
        warned.append(update.update_id)

    processor = ChatOrderedProcessor(max_backlog=3, on_overflow=overflow)

    async def handle(number: int) -> None:
        await gate.wait()
        handled.append(number)

    tasks = [asyncio.create_task(processor.process_update(_update(n, 9), handle(n))) for n in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*tasks)
    assert handled == [0, 1, 2]
    assert warned == [3]
    # Once the backlog drained, the chat is served (and could be warned) again.
    await processor.process_update(_update(99, 9), handle(99))
    assert handled[-1] == 99


async def test_replies_still_to_send_count_in_a_chat_s_backlog() -> None:
    unsent = {7: 3}
    warned: list[int] = []

    async def overflow(update: Update) -> None:
        warned.append(update.update_id)

    async def handle() -> Outcome:
        return Outcome.HANDLED

    processor = ChatOrderedProcessor(max_backlog=4, on_overflow=overflow, backlog=lambda chat: unsent.get(chat, 0))
    assert await processor.run(_update(1, 7), handle()) is Outcome.HANDLED  # 3 unsent + this one
    unsent[7] = 4  # its reply joined the outbox
    assert await processor.run(_update(2, 7), handle()) is Outcome.BUSY
    assert await processor.run(_update(3, 7), handle()) is Outcome.BUSY
    assert await processor.run(_update(4, 8), handle()) is Outcome.HANDLED  # other chats go on
    assert warned == [2]  # one "one moment" per flood
    unsent[7] = 0  # caught up: served again, and a new flood is told again
    assert await processor.run(_update(5, 7), handle()) is Outcome.HANDLED
    unsent[7] = 4
    assert await processor.run(_update(6, 7), handle()) is Outcome.BUSY
    assert warned == [2, 6]


async def test_the_processor_returns_each_update_s_outcome() -> None:
    gate = asyncio.Event()

    async def handle() -> Outcome:
        await gate.wait()
        return Outcome.HANDLED

    processor = ChatOrderedProcessor(max_backlog=1)
    first = asyncio.create_task(processor.run(_update(1, 7), handle()))
    await asyncio.sleep(0)
    # The chat's backlog is full: the second is not run, and the webhook must answer 503.
    assert await processor.run(_update(2, 7), handle()) is Outcome.BUSY
    assert Outcome.BUSY.redeliver and not Outcome.DUPLICATE.redeliver
    gate.set()
    assert await first is Outcome.HANDLED


# --- outbox effects and the rate limiter ------------------------------------------------------


def test_every_effect_survives_the_outbox_json() -> None:
    chart = ChartPhoto("Balance", "Months", "¥", (("Monthly", (3000.0, 1500.5, 0.0), False),), "zh_CN")
    effects = [
        SendText("<b>Hi</b> &amp; you", (("Yes", "a:1:0"), ("No", "a:1:1"))),
        SendText("plain"),
        SendChart(chart, (("Back", "a:2:0"),)),
        ReplaceText(17, "done"),
        ReplaceText(None, "done"),
        ShowTyping(),
        AnswerPress("4000000001", "Moved on"),
        AnswerPress("4000000002"),
        EditText(9, "<b>Q</b>\n\n✅ <i>A</i>"),
        RemoveButtons(9),
    ]
    for effect in effects:
        # Through real JSON, as the store keeps it.
        assert decode(json.loads(json.dumps(encode(effect)))) == effect
    cosmetic = [effect for effect in effects if is_cosmetic(effect)]
    assert [type(effect) for effect in cosmetic] == [ShowTyping, AnswerPress, AnswerPress, EditText, RemoveButtons]
    for junk in ({}, {"kind": "fax"}, {"kind": "text"}, {"kind": "edit", "message_id": "x", "html": ""}):
        with pytest.raises(ValueError):
            decode(junk)
    assert chat_id_of(chat_key(-100123)) == -100123
    with pytest.raises(ValueError):
        chat_id_of("terminal")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_429_pauses_its_chat_only_and_is_never_retried_inside() -> None:
    clock = _Clock()
    limiter = ChatRateLimiter(0, clock=clock)
    calls: list[int | None] = []

    async def call(chat: int | None, flood: float = 0) -> bool:
        async def callback() -> bool:
            calls.append(chat)
            if flood:
                raise paused_error(flood)
            return True

        data = {} if chat is None else {"chat_id": chat}
        return bool(await limiter.process_request(callback, (), {}, "sendMessage", data, None))

    with pytest.raises(RetryAfter):
        await call(1, flood=20)
    assert calls == [1]  # tried once: the delivery defers the chat, the limiter does not retry
    assert await call(2)  # another chat goes on at once
    with pytest.raises(RetryAfter) as refused:
        await call(1)  # the paused chat fails fast, without asking Telegram
    assert retry_after_seconds(refused.value) == pytest.approx(20)
    assert calls == [1, 2]
    clock.now += 20.5
    assert await call(1)  # the pause is over
    # A 429 for a request that names no chat (a callback answer): everything pauses.
    with pytest.raises(RetryAfter):
        await call(None, flood=5)
    with pytest.raises(RetryAfter):
        await call(2)
    clock.now += 5
    assert await call(2)


async def test_the_overall_rate_applies_to_chat_requests() -> None:
    limiter = ChatRateLimiter(2)  # two a second, a burst of two
    started = asyncio.get_running_loop().time()
    times: list[float] = []

    async def callback() -> bool:
        times.append(asyncio.get_running_loop().time() - started)
        return True

    for chat in (1, 2, 3):
        await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": chat}, None)
    assert times[2] >= 0.4  # the third waited for the bucket to leak


async def test_start_up_calls_wait_out_a_429() -> None:
    answers: list[RetryAfter | None] = [paused_error(0.05), paused_error(0.05), None]

    async def set_webhook() -> bool:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return True

    assert await patiently(set_webhook)
    assert answers == []
    with pytest.raises(RetryAfter):
        await patiently(set_webhook_refused, attempts=2)


async def set_webhook_refused() -> bool:
    raise paused_error(0.01)
