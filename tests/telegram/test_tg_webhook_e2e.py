"""End to end: the real `python -m bot webhook` process, real update JSON over HTTP,
and the stand-in Bot API recording what the user saw.

Expected texts come from the dialogs and catalogs themselves (through the localizer),
so an operator's wording change does not break these tests; the flow does.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest
from tg_harness import (
    ADMIN_ID,
    ROOT,
    SECRET,
    TOKEN,
    TgUser,
    Webhook,
    free_port,
    message_update,
    new_chat_id,
    next_update_id,
    start_webhook,
    stop_webhook,
    webhook_env,
)
from tg_standin import BOT_ID, StandIn

from bot.engine.engine import Engine
from bot.engine.turn import Msg
from bot.i18n.catalog import Localizer
from bot.runtime import build_engine

EN, ZH = "en", "zh_CN"


@pytest.fixture(scope="module")
def content() -> tuple[Engine, Localizer]:
    return build_engine()


class Texts:
    """What the bot should say, straight from the dialogs and catalogs."""

    def __init__(self, content: tuple[Engine, Localizer]) -> None:
        self.engine, self.localizer = content

    def ask(self, flow: str, state: str, locale: str) -> str:
        ask = self.engine.spec.flows[flow].states[state].ask
        assert ask is not None
        return self.localizer.text(Msg(ask), locale)

    def labels(self, flow: str, state: str, locale: str) -> list[str]:
        spec_state = self.engine.spec.flows[flow].states[state]
        labels = [self.localizer.text(Msg(o.label), locale) for o in spec_state.options]
        if not spec_state.options:  # a yes/no question
            labels = [self.message("yes", locale), self.message("no", locale)]
        if spec_state.skippable:
            labels.append(self.message("skip", locale))
        return labels

    def message(self, key: str, locale: str) -> str:
        return self.localizer.text(self.engine.message(key), locale)

    def cause(self, cause_id: str, locale: str) -> str:
        cause = next(c for c in self.engine.spec.causes if c.id == cause_id)
        return self.localizer.text(Msg(cause.label), locale)


@pytest.fixture(scope="module")
def texts(content: tuple[Engine, Localizer]) -> Texts:
    return Texts(content)


def visible(user: TgUser, since: int) -> str:
    return "\n".join(m.text for m in user.messages()[since:])


# --- registration ----------------------------------------------------------------------


def test_start_registers_webhook_and_commands(webhook: Webhook, standin: StandIn) -> None:
    registered = standin.webhook
    assert registered["url"] == webhook.url
    assert registered["secret_token"] == SECRET
    assert set(registered["allowed_updates"]) >= {"message", "callback_query"}
    commands = standin.commands()
    assert set(commands) == {"", "zh"}
    for listed in commands.values():
        assert [c["command"] for c in listed] == ["start", "restart", "back", "language", "help", "forget"]
    assert commands[""][0]["description"] != commands["zh"][0]["description"]


# --- whole conversations ---------------------------------------------------------------


def test_english_conversation_by_buttons(user: TgUser, texts: Texts) -> None:
    user.send("/start")
    first = user.last()
    assert texts.ask("start", "role", EN) in first.text
    assert [label for label, _ in first.buttons] == texts.labels("start", "role", EN)

    user.press(texts.labels("start", "role", EN)[0])
    # The question now shows the chosen answer, and its keyboard is gone.
    edited = user.messages()[0]
    assert edited.edits == 1 and not edited.buttons
    assert edited.text.endswith(texts.labels("start", "role", EN)[0])
    assert user.last().text == texts.ask("cardholder", "product", EN)
    assert user.buttons() == texts.labels("cardholder", "product", EN)

    user.press(texts.labels("cardholder", "product", EN)[0])  # credit card
    assert user.last().text == texts.ask("cardholder", "days", EN)
    user.press(texts.labels("cardholder", "days", EN)[2])  # 1-3 months
    assert user.last().text == texts.ask("cardholder", "amount", EN)
    user.press(texts.message("skip", EN))
    assert user.last().text == texts.ask("cardholder", "story", EN)
    user.press(texts.message("skip", EN))
    for state in ("income", "reminder", "shopping"):
        assert user.last().text == texts.ask("cardholder", state, EN)
        user.press(texts.message("no", EN))  # income unstable, no reminder, no impulse
    assert user.last().text == texts.ask("cardholder", "loans", EN)
    user.press(texts.labels("cardholder", "loans", EN)[0])
    before_plan = len(user.messages())
    user.press(texts.message("yes", EN))  # keeps a budget

    plan = user.messages()[before_plan:]
    whole = "\n".join(m.text for m in plan)
    ranking = re.search(r"^(.+?) ▇", whole, re.MULTILINE)
    assert ranking is not None, whole[:500]
    assert ranking.group(1) in {texts.cause("unstable_income", EN), texts.cause("missed_reminder", EN)}
    assert any(e["type"] == "code" for m in plan for e in m.entities)
    assert any("<code>" in m.html for m in plan)
    # A plan this long arrives in several messages, each within Telegram's limit,
    # announced with "typing…".
    assert len(plan) >= 2 and all(len(m.text) <= 4096 for m in plan)
    assert sum(len(m.text) for m in plan) > 4096
    assert user.calls("sendChatAction")
    for answered in user.answers():
        assert not answered.params.get("text")


def test_chinese_conversation_by_typing(zh_user: TgUser, texts: Texts) -> None:
    zh_user.send("/start")
    assert texts.ask("start", "role", ZH) in zh_user.last().text
    assert zh_user.buttons() == texts.labels("start", "role", ZH)
    zh_user.send("我逾期了")
    assert zh_user.last().text == texts.ask("cardholder", "product", ZH)
    zh_user.send("花呗")
    assert zh_user.last().text == texts.ask("cardholder", "days", ZH)
    zh_user.send("两个月")
    assert zh_user.last().text == texts.ask("cardholder", "amount", ZH)
    zh_user.send("1.5万")
    assert zh_user.last().text == texts.ask("cardholder", "story", ZH)
    zh_user.send("我最近忘了还款日期，没有收到提醒")
    for _ in range(6):  # the cause questions the story did not answer
        if not zh_user.buttons():
            break
        if zh_user.buttons() == texts.labels("cardholder", "loans", ZH):
            zh_user.send("没有")
        else:
            zh_user.send("是")
    plan = visible(zh_user, 0)
    assert texts.cause("missed_reminder", ZH) in plan
    assert any("<code>" in m.html for m in zh_user.messages())
    assert not zh_user.answers()  # typed, never pressed


def test_language_switch_re_renders_the_question(user: TgUser, texts: Texts) -> None:
    user.send("/start")
    user.send("/language")
    assert user.last().text.endswith(texts.ask("start", "role", ZH))
    assert user.buttons() == texts.labels("start", "role", ZH)
    user.send("/language en")
    assert user.last().text.endswith(texts.ask("start", "role", EN))


def test_back_and_help(user: TgUser, texts: Texts) -> None:
    user.send("/start")
    user.press(texts.labels("start", "role", EN)[0])
    user.send("/back")
    assert user.last().text.endswith(texts.ask("start", "role", EN))
    count = len(user.messages())
    user.send("/help")
    assert texts.message("help", EN).split("\n")[0] in visible(user, count)
    assert user.last().text.endswith(texts.ask("start", "role", EN))


# --- stale and forged buttons ----------------------------------------------------------


def test_stale_button_is_answered_politely(user: TgUser, texts: Texts) -> None:
    user.send("/start")
    old_question = user.last()
    user.send("1")  # answered by typing: the buttons above are now stale
    assert user.last().text == texts.ask("cardholder", "product", EN)
    count = len(user.messages())

    user.press_data(old_question, old_question.buttons[1][1])  # "bank staff", too late
    answers = user.answers()
    assert answers[-1].params["text"] == texts.message("stale_button", EN)
    shown = visible(user, count)
    assert texts.message("stale_button", EN) in shown
    assert user.last().text.endswith(texts.ask("cardholder", "product", EN))  # where we are
    assert not user.messages()[0].buttons  # the dead buttons were taken away
    # Nothing changed: the current question still takes its answer.
    user.send("Huabei")
    assert user.last().text == texts.ask("cardholder", "days", EN)


@pytest.mark.parametrize("data", ["a:999:999", "garbage", "a:-1:x", "f:maybe", "a:1:" + "9" * 40])
def test_forged_callback_never_crashes(user: TgUser, texts: Texts, data: str) -> None:
    user.send("/start")
    question = user.last()
    user.press_data(question, data)
    assert user.answers()[-1].params["text"] == texts.message("stale_button", EN)
    assert user.last().text.endswith(texts.ask("start", "role", EN))
    assert "failed" not in user.hook.logs()


# --- the HTTP contract -----------------------------------------------------------------


def test_wrong_or_missing_secret_is_403_and_changes_nothing(webhook: Webhook, standin: StandIn) -> None:
    chat = new_chat_id()
    for secret in ("wrong-secret-0123456789", ""):
        response = webhook.post(message_update(chat, "/start"), secret=secret)
        assert response.status_code == 403
    # The same update with the right secret still applies: nothing was marked processed.
    assert standin.messages(chat) == []


def test_malformed_bodies_are_400(webhook: Webhook) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b'{"message": {}}', b'{"update_id": "7"}'):
        response = webhook.post(None, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
    assert webhook.get("/healthz").status_code == 200


def test_unknown_update_shapes_are_acknowledged(webhook: Webhook, standin: StandIn) -> None:
    calls = standin.call_count
    for update in (
        {"update_id": next_update_id(), "some_future_update": {"id": 1}},
        {"update_id": next_update_id(), "message": "not an object"},
        {"update_id": next_update_id(), "edited_message": {"oops": True}},
        {"update_id": next_update_id(), "poll": {"id": "1"}},
    ):
        assert webhook.post(update).status_code == 200
    assert standin.call_count == calls
    assert webhook.get("/healthz").status_code == 200


def test_body_over_one_megabyte_is_413(webhook: Webhook) -> None:
    big = b'{"update_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert webhook.post(None, content=big).status_code == 413

    def chunks() -> Any:  # no Content-Length: counted while reading
        for _ in range(20):
            yield b"x" * 65536

    assert webhook.post(None, content=chunks()).status_code == 413  # type: ignore[arg-type]


def test_same_update_twice_gives_one_reply(user: TgUser) -> None:
    update_id = next_update_id()
    user.send("/start", update_id=update_id)
    count = len(user.messages())
    user.send("/start", update_id=update_id)
    assert len(user.messages()) == count


# --- /forget -----------------------------------------------------------------------------


def _rows_mentioning(database: Any, needle: str) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                if any(needle in str(value) for value in row):
                    found.append((table, row))
    return found


def test_forget_erases_the_user(user: TgUser, texts: Texts, webhook: Webhook) -> None:
    user.send("/start")
    user.press(texts.labels("start", "role", EN)[0])
    user.press(texts.labels("cardholder", "product", EN)[1])
    assert _rows_mentioning(webhook.database, str(user.chat_id))

    user.send("/forget")
    confirm = user.last()
    assert confirm.text == texts.message("forget_confirm", EN)
    assert [label for label, _ in confirm.buttons] == [
        texts.message("forget_button", EN),
        texts.message("cancel_button", EN),
    ]
    user.press(texts.message("forget_button", EN))
    assert user.messages()[-1].text == texts.message("forget_done", EN)
    assert not user.messages()[-1].buttons
    assert _rows_mentioning(webhook.database, str(user.chat_id)) == []


def test_forget_cancelled_keeps_the_user(user: TgUser, texts: Texts, webhook: Webhook) -> None:
    user.send("/start")
    user.send("/forget")
    user.press(texts.message("cancel_button", EN))
    assert user.last().text == texts.message("forget_cancelled", EN)
    assert _rows_mentioning(webhook.database, str(user.chat_id))


# --- groups ------------------------------------------------------------------------------


def test_group_chats_get_one_polite_private_only(webhook: Webhook, standin: StandIn, texts: Texts) -> None:
    group = -new_chat_id()
    for text in ("/start@overdue_advisor_test_bot", "/help", "hello"):
        update = message_update(group, text, chat_type="group", user_id=77)
        assert webhook.post(update).status_code == 200
    sent = standin.messages(group)
    assert [m.text for m in sent] == [texts.message("private_only", EN)]

    other = -new_chat_id()
    joined = {
        "update_id": next_update_id(),
        "my_chat_member": {
            "chat": {"id": other, "type": "supergroup", "title": "Card club"},
            "from": {"id": 78, "is_bot": False, "first_name": "Bo", "language_code": "zh"},
            "date": int(time.time()),
            "old_chat_member": {"user": {"id": BOT_ID, "is_bot": True, "first_name": "A"}, "status": "left"},
            "new_chat_member": {"user": {"id": BOT_ID, "is_bot": True, "first_name": "A"}, "status": "member"},
        },
    }
    assert webhook.post(joined).status_code == 200
    assert [m.text for m in standin.messages(other)] == [texts.message("private_only", ZH)]


# --- operations ----------------------------------------------------------------------------


def test_stats_for_operators_only(webhook: Webhook, standin: StandIn, user: TgUser, texts: Texts) -> None:
    operator = TgUser(webhook, standin, "en")
    operator.chat_id = ADMIN_ID
    operator.send("/stats")
    counts = operator.last().text
    assert counts.startswith("Anonymous usage counts")
    assert re.search(r"active_conversations: \d+", counts)
    assert str(user.chat_id) not in counts
    user.send("/stats")  # anyone else: an unknown command, no numbers
    assert user.last().text == texts.message("unknown_command", EN)


def test_healthz_and_metrics(webhook: Webhook, user: TgUser) -> None:
    user.send("/start")
    health = webhook.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    metrics = webhook.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert re.search(r'overdue_updates_handled_total\{result="ok",type="command"\} [1-9]', text)
    assert "overdue_update_handling_seconds_bucket" in text
    assert re.search(r"overdue_active_conversations [1-9]", text)
    assert 'overdue_webhook_rejected_total{reason="secret"}' in text


def test_rate_limited_reply_still_arrives(user: TgUser, standin: StandIn, texts: Texts) -> None:
    standin.fail_next(1, retry_after=1, methods={"sendMessage"})
    started = time.monotonic()
    user.send("/start")
    assert time.monotonic() - started >= 1.0  # retry_after was honoured, not ignored
    assert texts.ask("start", "role", EN) in user.last().text


def test_telegram_outage_is_503_and_the_redelivery_applies_once(user: TgUser, standin: StandIn, texts: Texts) -> None:
    user.send("/start")
    update = message_update(user.chat_id, "1", language="en")
    # More 429s than the rate limiter retries: the reply cannot be sent, so nothing is
    # committed and Telegram is asked to deliver the update again.
    standin.fail_next(50, retry_after=0, methods={"sendMessage"})
    assert user.hook.post(update).status_code == 503
    standin.fail_next(0)
    assert user.last().text.endswith(texts.ask("start", "role", EN))  # nothing happened
    assert user.hook.post(update).status_code == 200  # Telegram's second delivery
    assert user.last().text == texts.ask("cardholder", "product", EN)
    count = len(user.messages())
    assert user.hook.post(update).status_code == 200  # and a third: already applied
    assert len(user.messages()) == count


def test_flooding_chat_gets_one_moment_and_does_not_slow_others(
    webhook: Webhook, standin: StandIn, texts: Texts
) -> None:
    flooder, calm = new_chat_id(), new_chat_id()
    standin.slow_down(flooder, 0.3)

    async def flood() -> float:
        async with httpx.AsyncClient(timeout=60) as client:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

            async def post(chat: int, text: str) -> httpx.Response:
                return await client.post(webhook.url, json=message_update(chat, text), headers=headers)

            await post(flooder, "/start")
            burst = [asyncio.create_task(post(flooder, f"spam {i}")) for i in range(30)]
            while len(standin.calls("sendMessage", flooder)) < 2:  # the flood is being answered
                await asyncio.sleep(0.01)
            assert (await post(calm, "/start")).status_code == 200
            # The calm chat was answered while the flooder's backlog was still being worked
            # through (each of its replies takes 0.3 s at the stand-in): it did not queue behind.
            calm_done_first = not all(task.done() for task in burst)
            return calm_done_first, [r.status_code for r in await asyncio.gather(*burst)]

    calm_done_first, statuses = asyncio.run(flood())
    assert calm_done_first
    # Beyond the backlog, updates are refused with 503, so Telegram delivers them later:
    # bounded, and nothing lost.
    assert set(statuses) == {200, 503} and statuses.count(200) <= 6
    flood_texts = [m.text for m in standin.messages(flooder)]
    assert flood_texts.count(texts.message("one_moment", EN)) == 1
    assert len(flood_texts) < 20  # a bounded backlog, not a reply storm
    assert texts.ask("start", "role", EN) in standin.messages(calm)[-1].text


def test_no_user_text_or_amounts_in_logs(zh_user: TgUser, webhook: Webhook) -> None:
    zh_user.send("/start")
    zh_user.send("我逾期了")
    zh_user.send("信用卡")
    zh_user.send("45天")
    zh_user.send("23456")
    zh_user.send("我叫王小明，失业了所以还不上")
    logs = webhook.logs()
    for secret in ("王小明", "失业", "23456", "23,456", TOKEN, SECRET):
        assert secret not in logs


# --- processes -------------------------------------------------------------------------------


def test_config_errors_exit_2_with_one_line_each(tmp_path: Any) -> None:
    env = webhook_env("http://127.0.0.1:9", tmp_path, 8080)
    del env["TELEGRAM_BOT_TOKEN"]
    env.update(WEBHOOK_SECRET="short!", PORT="eighty", ADMIN_IDS="1,two")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "webhook"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 5, result.stderr
    for word in ("TELEGRAM_BOT_TOKEN", "may only contain", "too short", "PORT", "ADMIN_IDS"):
        assert any(word in line for line in problems), (word, result.stderr)


def test_sigterm_finishes_the_update_in_flight(standin: StandIn, tmp_path: Any) -> None:
    hook = start_webhook(webhook_env(standin.url, tmp_path, free_port()), tmp_path)
    chat = new_chat_id()
    standin.slow_down(chat, 1.0)
    result: dict[str, Any] = {}

    def post() -> None:  # its own client: stop_webhook closes the fixture's
        with httpx.Client(timeout=30) as client:
            result["response"] = client.post(
                hook.url,
                json=message_update(chat, "/start"),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )

    sender = threading.Thread(target=post)
    sender.start()
    # Wait until the update is being handled (its sendMessage takes a second to answer).
    in_flight = "overdue_updates_in_flight 1.0"
    assert standin.wait_for(lambda: in_flight in hook.get("/metrics").text, timeout=20)
    stop_webhook_started = time.monotonic()
    code = stop_webhook(hook)
    sender.join(10)
    assert result["response"].status_code == 200
    assert standin.messages(chat), "the reply in flight was sent before the process stopped"
    assert time.monotonic() - stop_webhook_started < 10
    assert code in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "webhook stopped" in hook.logs()


def test_polling_mode(tmp_path: Any, texts: Texts) -> None:
    server = StandIn(TOKEN).start()
    try:
        env = webhook_env(server.url, tmp_path, free_port())
        log = (tmp_path / "polling.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "bot", "polling"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            chat = new_chat_id()
            server.push_update(message_update(chat, "/start"))
            assert server.wait_for(lambda: bool(server.messages(chat)), timeout=30), (
                tmp_path / "polling.log"
            ).read_text()
            assert texts.ask("start", "role", EN) in server.messages(chat)[-1].text
            assert server.commands()
        finally:
            process.terminate()
            process.wait(20)
    finally:
        server.stop()


def test_webhook_json_is_what_telegram_sends(webhook: Webhook) -> None:
    # A verbatim update as Telegram posts it, with fields PTB may not know about.
    raw = json.dumps(
        {
            "update_id": next_update_id(),
            "message": {
                "message_id": 1,
                "date": 1732800000,
                "text": "/help",
                "from": {
                    "id": 55501,
                    "is_bot": False,
                    "first_name": "Li",
                    "language_code": "en",
                    "is_premium": True,
                    "added_to_attachment_menu": False,
                },
                "chat": {"id": 55501, "first_name": "Li", "type": "private"},
                "entities": [{"offset": 0, "length": 5, "type": "bot_command"}],
                "some_new_field": {"x": 1},
            },
        }
    ).encode()
    assert webhook.post(None, content=raw).status_code == 200


def test_docker_healthcheck_probe(webhook: Webhook) -> None:
    port = webhook.base.rsplit(":", 1)[1]
    for probe_port, expected in ((port, 0), (str(free_port()), 1)):
        result = subprocess.run(
            [sys.executable, "-m", "bot.web.healthcheck"],
            cwd=ROOT,
            env={"PORT": probe_port, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=30,
        )
        assert result.returncode == expected
