"""End to end: the real `python -m bot webhook` process, real update JSON over HTTP,
and the stand-in Bot API recording what the user saw.

Expected texts come from the dialogs and catalogs themselves (through the localizer),
so an operator's wording change does not break these tests; the flow does.
"""

from __future__ import annotations

import asyncio
import html
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

from bot.engine.engine import Engine
from bot.engine.turn import Money, Msg
from bot.i18n.catalog import Localizer
from bot.runtime import build_engine
from tests.support.tg_harness import (
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
from tests.support.tg_standin import BOT_ID, PNG_SIGNATURE, Message, StandIn

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

    def message(self, key: str, locale: str, **values: str | Money) -> str:
        return self.localizer.text(self.engine.message(key, **values), locale)

    def menu_prompts(self, locale: str) -> set[str]:
        """The questions of the plan's menus (asked again after every step, by design)."""
        states = self.engine.spec.flows["cardholder"].states
        return {self.ask("cardholder", name, locale) for name in states if name.startswith("menu_")} | {
            self.ask("cardholder", "after_plan", locale)
        }

    def cause(self, cause_id: str, locale: str) -> str:
        cause = next(c for c in self.engine.spec.causes if c.id == cause_id)
        return self.localizer.text(Msg(cause.label), locale)


@pytest.fixture(scope="module")
def texts(content: tuple[Engine, Localizer]) -> Texts:
    return Texts(content)


def visible(user: TgUser, since: int) -> str:
    return "\n".join(m.text for m in user.messages()[since:])


# Telegram's plan is read on a phone: no message longer than this (render.MAX_READABLE).
READABLE = 1500


def walk_the_plan(user: TgUser, texts: Texts, locale: str, *, typing: bool) -> None:
    """From the plan's summary, "Next step" at every menu until the menu after the plan."""
    after_plan = texts.labels("cardholder", "after_plan", locale)
    next_step = texts.labels("cardholder", "menu_summary", locale)[0]
    # The check-in and the reminder offered at the plan's end: "No, thanks" to both.
    no_thanks = texts.labels("cardholder", "offer_checkin", locale)[1]
    for _ in range(14):
        if user.buttons() == after_plan:
            return
        if no_thanks in user.buttons():
            if typing:
                user.send(no_thanks)
            else:
                user.press(no_thanks)
            continue
        assert next_step in user.buttons(), user.last().text
        if typing:
            user.send(next_step)
        else:
            user.press(next_step)
    raise AssertionError(f"the plan did not end in its menu: {user.last().text}")


def phrase_messages(messages: list[Message]) -> list[tuple[str, str]]:
    """(title, phrase) of every phrase message; each must be exactly a bold title and a
    tap-to-copy <code> phrase, nothing else in the message."""
    phrases = []
    for message in messages:
        if "<code>" not in message.html:
            continue
        title, phrase = message.text.split("\n", 1)
        escaped = html.escape(title, quote=False), html.escape(phrase, quote=False)
        assert message.html == "<b>{}</b>\n<code>{}</code>".format(*escaped)
        assert [e["type"] for e in message.entities] == ["bold", "code"]
        phrases.append((title, phrase))
    return phrases


def assert_phone_sized_and_said_once(plan: list[Message], texts: Texts, locale: str) -> None:
    """Every message fits a phone screen or two; no paragraph or phrase comes twice (the
    menu questions and the answered-button marks aside)."""
    for message in plan:
        assert len(message.text) <= READABLE, message.text[:200]
    menus = texts.menu_prompts(locale)
    said = [
        paragraph
        for message in plan
        for paragraph in message.text.split("\n\n")
        if paragraph not in menus and not paragraph.startswith("✅")
    ]
    repeated = {paragraph for paragraph in said if said.count(paragraph) > 1}
    assert not repeated, repeated


def use_the_calculator(user: TgUser, texts: Texts, locale: str, monthly: str) -> tuple[str, str]:
    """Ask the calculator with `monthly` a month; check its photo and table. Returns the
    table's text and the call-script phrase with the monthly amount it proposes."""
    count = len(user.messages())
    photos_before = len(user.calls("sendPhoto"))
    user.send(monthly)
    shown = user.messages()[count:]
    photos = [m for m in shown if m.photo is not None]
    assert len(photos) == 1 and len(user.calls("sendPhoto")) == photos_before + 1
    assert photos[0].photo is not None and photos[0].photo.startswith(PNG_SIGNATURE)
    assert photos[0].text == texts.message("calc_chart_title", locale)
    assert all(len(m.text) <= READABLE for m in shown)
    table = "\n".join(m.text for m in shown if m.photo is None)
    # The proposal line names the monthly amount to offer; the script then offers it.
    before, after = texts.message("calc_proposal", locale, proposal="\0").split("\0")
    line = next(p for p in table.split("\n") if p.startswith(before) and p.endswith(after))
    proposal = line[len(before) : len(line) - len(after)]
    return table, texts.message("calc_proposal_phrase", locale, proposal=proposal)


# --- registration ----------------------------------------------------------------------


def test_start_registers_webhook_and_commands(webhook: Webhook, standin: StandIn) -> None:
    registered = standin.webhook
    assert registered["url"] == webhook.url
    assert registered["secret_token"] == SECRET
    assert set(registered["allowed_updates"]) >= {"message", "callback_query"}
    commands = standin.commands()
    assert set(commands) == {"", "zh"}
    for listed in commands.values():
        assert [c["command"] for c in listed] == [
            "start",
            "restart",
            "back",
            "language",
            "help",
            "calculator",
            "remind",
            "reminders",
            "forget",
        ]
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

    # The plan opens with a short summary and the step menu; no ranking bars any more.
    summary = "\n".join(m.text for m in user.messages()[before_plan:])
    assert texts.cause("unstable_income", EN) in summary
    assert "▇" not in summary
    assert user.last().text.endswith(texts.ask("cardholder", "menu_summary", EN))
    assert user.buttons() == texts.labels("cardholder", "menu_summary", EN)

    walk_the_plan(user, texts, EN, typing=False)
    plan = user.messages()[before_plan:]
    assert_phone_sized_and_said_once(plan, texts, EN)
    # The words for the bank: each phrase a message of its own, one tap to copy.
    phrases = phrase_messages(plan)
    assert len(phrases) >= 3
    assert phrases[0][0] == texts.localizer.text(Msg("To start"), EN)
    assert user.calls("sendChatAction")  # the long replies are announced with "typing…"
    for answered in user.answers():
        assert not answered.params.get("text")

    # The calculator, from the menu after the plan: the amount was skipped, so it asks it.
    user.press(texts.labels("cardholder", "after_plan", EN)[1])
    assert user.last().text == texts.ask("cardholder", "calculator", EN)
    user.send("20000")
    assert user.last().text.endswith(texts.ask("cardholder", "calc_monthly", EN))
    table, offer = use_the_calculator(user, texts, EN, "1500")
    assert "annualised rate" in table
    assert offer.startswith("I can steadily repay ")
    assert user.buttons() == texts.labels("cardholder", "after_plan", EN)  # back where it was asked
    # ... and the call script now offers that monthly amount.
    count = len(user.messages())
    user.press(texts.labels("cardholder", "after_plan", EN)[0])
    script = [phrase for _, phrase in phrase_messages(user.messages()[count:])]
    assert offer in script


def test_chinese_conversation_by_typing(zh_user: TgUser, texts: Texts) -> None:
    zh_user.send("/start")
    assert texts.ask("start", "role", ZH) in zh_user.last().text
    assert zh_user.buttons() == texts.labels("start", "role", ZH)
    zh_user.send("我逾期了")
    assert zh_user.last().text == texts.ask("cardholder", "product", ZH)
    zh_user.send("花呗")
    assert zh_user.last().text == texts.ask("cardholder", "days", ZH)
    # After a typed number the reply may first read it back; the question comes last.
    zh_user.send("两个月")
    assert zh_user.last().text.endswith(texts.ask("cardholder", "amount", ZH))
    zh_user.send("1.5万")
    assert zh_user.last().text.endswith(texts.ask("cardholder", "story", ZH))
    before_plan = len(zh_user.messages())
    zh_user.send("我最近忘了还款日期，没有收到提醒")
    menu = texts.ask("cardholder", "menu_summary", ZH)
    for _ in range(6):  # the cause questions the story did not answer, up to the plan's menu
        if zh_user.last().text.endswith(menu):
            break
        before_plan = len(zh_user.messages())
        if zh_user.buttons() == texts.labels("cardholder", "loans", ZH):
            zh_user.send("没有")
        else:
            zh_user.send("是")
    summary = visible(zh_user, before_plan)
    assert texts.cause("missed_reminder", ZH) in summary
    assert "¥15,000.00" in summary and "60天" in summary  # what was understood, shown back
    assert zh_user.last().text.endswith(menu)

    walk_the_plan(zh_user, texts, ZH, typing=True)
    plan = zh_user.messages()[before_plan:]
    assert_phone_sized_and_said_once(plan, texts, ZH)
    phrases = phrase_messages(plan)
    assert len(phrases) >= 3
    assert phrases[0][0] == texts.localizer.text(Msg("To start"), ZH)
    assert "花呗" in phrases[0][1] and "60天" in phrases[0][1]

    # The calculator, typed: the amount (1.5万) is known, so only the monthly payment is asked.
    zh_user.send(texts.labels("cardholder", "after_plan", ZH)[1])
    assert zh_user.last().text == texts.ask("cardholder", "calc_monthly", ZH)
    table, offer = use_the_calculator(zh_user, texts, ZH, "1500")
    assert "年化利率" in table
    assert offer.startswith("我每月可以稳定还款")
    count = len(zh_user.messages())
    zh_user.send("话术")
    script = [phrase for _, phrase in phrase_messages(zh_user.messages()[count:])]
    assert offer in script
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
    webhook.wait_delivered(group)
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
    webhook.wait_delivered(other)
    assert [m.text for m in standin.messages(other)] == [texts.message("private_only", ZH)]


# --- operations ----------------------------------------------------------------------------


def test_stats_for_operators_only(webhook: Webhook, standin: StandIn, user: TgUser, texts: Texts) -> None:
    user.send("/start")
    operator = TgUser(webhook, standin, "en")
    operator.chat_id = ADMIN_ID
    operator.send("/stats")
    # The funnel chart as a photo, the summary as its caption, then the tables.
    chart, *tables = operator.messages()
    assert chart.photo is not None and chart.photo.startswith(PNG_SIGNATURE)
    assert chart.text.startswith("Anonymous usage counts")
    assert re.search(r"Started \d+ · plan shown \d+ \(\d+%\) · finished \d+", chart.text)
    assert re.search(r"Conversations stored now: [1-9]", chart.text)
    assert re.search(r"\nstart\.role +[1-9]\d* ", "\n".join(table.text for table in tables))
    assert str(user.chat_id) not in "".join(message.text for message in (chart, *tables))
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


def test_telegram_outage_delays_the_reply_and_the_redelivery_applies_once(
    user: TgUser, standin: StandIn, texts: Texts
) -> None:
    user.send("/start")
    update = message_update(user.chat_id, "1", language="en")
    # Telegram fails the reply: the update was committed with its reply all the same
    # (200), and the reply goes out from the outbox once Telegram answers again.
    standin.fail_call("sendMessage", code=502, chat_id=user.chat_id)
    assert user.hook.post(update).status_code == 200
    user.hook.wait_delivered(user.chat_id)
    assert user.last().text == texts.ask("cardholder", "product", EN)
    count = len(user.messages())
    assert user.hook.post(update).status_code == 200  # Telegram delivers it again: already applied
    user.hook.wait_delivered(user.chat_id)
    assert len(user.messages()) == count


def test_flooding_chat_gets_one_moment_and_does_not_slow_others(
    webhook: Webhook, standin: StandIn, texts: Texts
) -> None:
    flooder, calm = new_chat_id(), new_chat_id()
    # Long enough that the whole burst arrives while the first reply is still held, even
    # on a loaded machine (or under coverage): only then is the backlog bound exact.
    standin.slow_down(flooder, 0.6)

    async def flood() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

            async def post(chat: int, text: str) -> httpx.Response:
                return await client.post(webhook.url, json=message_update(chat, text), headers=headers)

            await post(flooder, "/start")
            burst = [asyncio.create_task(post(flooder, f"spam {i}")) for i in range(30)]
            while len(standin.calls("sendMessage", flooder)) < 2:  # the flood is being answered
                await asyncio.sleep(0.01)
            assert (await post(calm, "/start")).status_code == 200
            return [r.status_code for r in await asyncio.gather(*burst)]

    statuses = asyncio.run(flood())
    webhook.wait_delivered(calm)
    # The calm chat was answered while the flooder's replies were still being sent (each
    # takes 0.6 s at the stand-in): it did not queue behind them.
    assert webhook.outbox(flooder) > 0
    webhook.wait_delivered(flooder)
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
    # Answered once committed; its reply is now being sent (the sendMessage takes a second).
    sender.join(20)
    assert result["response"].status_code == 200
    stop_webhook_started = time.monotonic()
    code = stop_webhook(hook)
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
