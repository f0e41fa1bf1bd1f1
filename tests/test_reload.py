"""Reloading dialogs and catalogs while serving: a good edit is used by the next turn and
conversations go on; a broken one is refused with its file:line:column and the old set
keeps answering. In-process on a real SQLite store, then the real webhook process
(SIGHUP, and /reload from Telegram: admins only)."""

from __future__ import annotations

import asyncio
import html
import io
import logging
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.channels.terminal import chat
from bot.conversations import Advisor
from bot.engine.engine import Engine
from bot.engine.events import Event, Said, Start
from bot.engine.turn import Msg, Say, Turn
from bot.i18n.catalog import Localizer
from bot.runtime import ContentReloader, Reloaded, load_checked
from bot.store.sqlite import SqliteStore
from tests.support.cli import DIALOGS, LOCALES, run_bot
from tests.support.durability_support import wait_until
from tests.support.tg_harness import (
    ADMIN_ID,
    TOKEN,
    StandIn,
    TgUser,
    Webhook,
    free_port,
    start_webhook,
    stop_webhook,
    webhook_env,
)

NEW_ASK = "Roughly how much is overdue now? An amount like 15000 or 1.5万, or press Skip."
NEW_ASK_ZH = "现在大约逾期多少钱？例如 15000 或 1.5万，也可以点“跳过”。"


class Content:
    """Writable copies of the dialogs and catalogs, and the edits an operator makes."""

    def __init__(self, root: Path, bundled: Engine) -> None:
        self.dialogs = root / "dialogs"
        self.locales = root / "locales"
        shutil.copytree(DIALOGS, self.dialogs, ignore=shutil.ignore_patterns("tests"))
        shutil.copytree(LOCALES, self.locales)
        ask = bundled.spec.flows["cardholder"].states["amount"].ask
        assert ask is not None
        self.old_ask = ask

    def _replace(self, name: str, old: str, new: str) -> None:
        path = self.dialogs / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def reword_amount_question(self, *, translate: bool = True) -> None:
        """A new English question for `cardholder.amount`, and its Chinese (or not)."""
        self._replace("cardholder.yaml", f'ask: "{self.old_ask}"', f'ask: "{NEW_ASK}"')
        if translate:
            with (self.locales / "zh_CN" / "LC_MESSAGES" / "messages.po").open("a", encoding="utf-8") as po:
                po.write(f'\nmsgid "{NEW_ASK}"\nmsgstr "{NEW_ASK_ZH}"\n')

    def break_next_of_days(self) -> int:
        """`days` now goes to a state that does not exist; returns the line of the typo."""
        self._replace("cardholder.yaml", "    next: amount\n", "    next: amout\n")
        lines = (self.dialogs / "cardholder.yaml").read_text(encoding="utf-8").splitlines()
        return lines.index("    next: amout") + 1


@pytest.fixture
def content(tmp_path: Path, engine: Engine) -> Content:
    return Content(tmp_path, engine)


@pytest.fixture
def advisor(content: Content, tmp_path: Path) -> Iterator[Advisor]:
    engine, localizer = load_checked(content.dialogs, content.locales)
    store = SqliteStore(f"sqlite:///{tmp_path / 'bot.sqlite3'}", hash_key=b"reload-test")
    asyncio.run(store.open())
    yield Advisor(engine, store, localizer)
    asyncio.run(store.close())


def _turn(advisor: Advisor, event: Event, chat: str = "tg:1") -> Turn:
    turn = asyncio.run(advisor.handle(chat, event, locale="zh_CN"))
    assert turn is not None
    return turn


def _prompt(advisor: Advisor, turn: Turn) -> str:
    assert turn.question is not None
    return advisor.localizer.text(turn.question.prompt, turn.session.locale)


def test_a_good_edit_is_used_by_the_next_turn_and_the_conversation_goes_on(advisor: Advisor, content: Content) -> None:
    for event in (Start("zh_CN"), Said("1"), Said("信用卡")):
        turn = _turn(advisor, event)
    assert turn.session.state == "days"
    content.reword_amount_question()
    reloaded = asyncio.run(ContentReloader(advisor, content.dialogs, content.locales).reload())
    assert reloaded.ok and reloaded.problems == ()
    assert reloaded.states == sum(len(flow.states) for flow in advisor.engine.spec.flows.values())
    turn = _turn(advisor, Said("45"))  # the same conversation: its answers are kept
    assert (turn.session.state, turn.session.slots["days_overdue"]) == ("amount", 45)
    assert _prompt(advisor, turn) == NEW_ASK_ZH
    assert advisor.localizer.text(Msg(NEW_ASK), "en") == NEW_ASK


def test_a_conversation_at_a_state_the_edit_removed_starts_again_with_a_notice(
    advisor: Advisor, content: Content
) -> None:
    for event in (Start("en"), Said("1"), Said("credit card"), Said("45")):
        turn = _turn(advisor, event)
    assert turn.session.state == "amount"
    content._replace("cardholder.yaml", "\n  amount:\n    ask:", "\n  amount_v2:\n    ask:")
    content._replace("cardholder.yaml", "    next: amount\n", "    next: amount_v2\n")
    assert asyncio.run(ContentReloader(advisor, content.dialogs, content.locales).reload()).ok
    turn = _turn(advisor, Said("15000"))
    assert (turn.session.flow, turn.session.state, turn.session.slots) == ("start", "role", {})
    said = [advisor.localizer.text(block.text, "en") for block in turn.blocks if isinstance(block, Say)]
    assert said[0] == advisor.localizer.text(advisor.engine.message("session_updated"), "en")


def test_a_broken_edit_is_refused_with_its_place_and_the_old_dialogs_answer(
    advisor: Advisor, content: Content, caplog: pytest.LogCaptureFixture
) -> None:
    _turn(advisor, Start("zh_CN"))
    _turn(advisor, Said("1"))
    serving = advisor.engine, advisor.localizer
    line = content.break_next_of_days()
    content.reword_amount_question()  # a good change in the same set is not taken either
    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        reloaded = asyncio.run(ContentReloader(advisor, content.dialogs, content.locales).reload())
    assert not reloaded.ok
    place = f"{content.dialogs / 'cardholder.yaml'}:{line}:11: state 'days' goes to unknown state 'amout'"
    assert any(problem.startswith(place) for problem in reloaded.problems), reloaded.problems
    logged = [record.getMessage() for record in caplog.records]
    assert any(message.startswith(f"reload refused: {place}") for message in logged), logged
    assert (advisor.engine, advisor.localizer) == serving
    turn = _turn(advisor, Said("信用卡"))
    turn = _turn(advisor, Said("45"))
    assert turn.session.state == "amount"
    assert _prompt(advisor, turn) == advisor.localizer.text(Msg(content.old_ask), "zh_CN")


def test_a_text_without_its_translation_is_refused(advisor: Advisor, content: Content) -> None:
    serving = advisor.engine
    content.reword_amount_question(translate=False)
    reloaded = asyncio.run(ContentReloader(advisor, content.dialogs, content.locales).reload())
    assert len(reloaded.problems) == 1
    assert "cardholder.yaml:" in reloaded.problems[0] and "no zh_CN translation for" in reloaded.problems[0]
    assert advisor.engine is serving


def test_a_folder_that_cannot_be_read_is_refused_not_fatal(advisor: Advisor, content: Content) -> None:
    serving = advisor.engine
    shutil.rmtree(content.dialogs)
    reloaded = asyncio.run(ContentReloader(advisor, content.dialogs, content.locales).reload())
    assert not reloaded.ok and advisor.engine is serving
    assert str(content.dialogs) in reloaded.problems[0]


def test_the_admins_report_fits_one_telegram_message() -> None:
    localizer = Localizer.load(LOCALES)
    problems = tuple(f"/srv/dialogs/cardholder.yaml:{n}:3: state <s{n}> cannot be reached" for n in range(300))
    report = Reloaded(problems, 0.5).report(localizer, "en", 4096, html.escape)
    assert len(report) <= 4096
    lines = report.splitlines()
    assert lines[0] == "Not reloaded: 300 problem(s); still serving the dialogs loaded before."
    assert lines[1] == "/srv/dialogs/cardholder.yaml:0:3: state &lt;s0&gt; cannot be reached"
    shown = len(lines) - 2
    assert lines[-1] == f"… and {300 - shown} more: see the log." and shown > 40
    few = Reloaded(problems[:2], 0.5).report(localizer, "zh_CN", 4096)
    assert few.splitlines() == ["未重新加载：发现2个问题；仍在使用之前加载的对话。", *problems[:2]]


class EditingStdin(io.StringIO):
    """Typed lines, with the operator's edit made just before one of them is read."""

    def __init__(self, lines: list[str], before: str, edit: Callable[[], None]) -> None:
        super().__init__("".join(f"{line}\n" for line in lines))
        self.before, self.edit = before, edit

    def readline(self, size: int | None = -1) -> str:
        line = super().readline()
        if line.strip() == self.before:
            self.edit()
        return line


def test_edit_then_reload_in_the_terminal(advisor: Advisor, content: Content) -> None:
    lines = ["1", "credit card", "/reload", "45", "/stats"]
    stdin = EditingStdin(lines, before="/reload", edit=content.reword_amount_question)
    stdout = io.StringIO()
    reloader = ContentReloader(advisor, content.dialogs, content.locales)
    asyncio.run(chat(advisor, "en", stdin, stdout, reloader=reloader))
    out = stdout.getvalue()
    assert re.search(r"> /reload\nReloaded in \d+\.\d\d s: \d+ flows", out)
    assert out.rstrip().count(NEW_ASK) == 1 and out.index(NEW_ASK) > out.index("> 45")
    # /stats at a terminal: the funnel of this store (one conversation, at the amount).
    assert "Started 1 · plan shown 0 (0%) · finished 0" in out
    assert re.search(r"\ncardholder\.amount +1 +0 +1\n", out)


def test_chat_tries_an_edited_copy_and_refuses_a_broken_one(content: Content, tmp_path: Path) -> None:
    content.reword_amount_question()
    database = f"sqlite:///{tmp_path / 'try.sqlite3'}"
    where = ["--dialogs", str(content.dialogs), "--locales", str(content.locales), "--database-url", database]
    tried = run_bot("chat", *where, "--lang", "en", stdin="1\ncredit card\n45\n")
    assert tried.returncode == 0, tried.stderr
    assert NEW_ASK in tried.stdout.split("> 45")[-1]
    line = content.break_next_of_days()
    refused = run_bot("chat", *where, "--lang", "en", stdin="1\n")
    assert refused.returncode == 1 and refused.stdout == ""
    place = f"{content.dialogs / 'cardholder.yaml'}:{line}:11"
    assert f"{place}: state 'days' goes to unknown state 'amout'" in refused.stderr
    assert re.search(r"\n\d+ problem\(s\) in the dialogs\.\n$", refused.stderr)


# ------------------------------------------------------------------ the running webhook process


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    server = StandIn(TOKEN).start()
    yield server
    server.stop()


def _hangup_and_wait(hook: Webhook, expected: str) -> None:
    """SIGHUP, then wait for the log line that says how it went (the log only grows)."""
    seen = hook.logs().count(expected)
    hook.process.send_signal(signal.SIGHUP)
    wait_until(lambda: hook.logs().count(expected) > seen, f"{expected!r} in the log")


def test_sighup_and_reload_in_a_running_webhook(standin: StandIn, content: Content, tmp_path: Path) -> None:
    env = webhook_env(
        standin.url,
        tmp_path,
        free_port(),
        DIALOGS_DIR=str(content.dialogs),
        LOCALES_DIR=str(content.locales),
        ADMIN_IDS=str(ADMIN_ID),
    )
    hook = start_webhook(env, tmp_path)
    try:
        user = TgUser(hook, standin, "en")
        for text in ("/start", "1", "credit card"):
            user.send(text)
        assert user.last().text.startswith("How many days is it overdue?")

        # A good edit, taken while the conversation is at the question before it.
        content.reword_amount_question()
        _hangup_and_wait(hook, "reloaded dialogs and catalogs")
        user.send("45")
        assert user.last().text.endswith(NEW_ASK)

        # A broken edit: refused, every problem logged with its place; the dialogs loaded
        # last keep answering, this conversation and a new one alike.
        line = content.break_next_of_days()
        _hangup_and_wait(hook, "problem(s); still serving the dialogs loaded before")
        assert f"reload refused: {content.dialogs / 'cardholder.yaml'}:{line}:11: " in hook.logs()
        user.send("15000")
        assert "\n\nIn your own words: what happened" in user.last().text  # after the read-back
        newcomer = TgUser(hook, standin, "zh-hans")
        for text in ("/start", "1", "花呗", "两个月"):
            newcomer.send(text)
        assert newcomer.last().text.endswith(NEW_ASK_ZH)

        # /reload: an unknown command to everyone but ADMIN_IDS, who read the outcome.
        user.send("/reload")
        assert user.last().text == "I don't know that command. Send /help to see what I can do."
        admin = TgUser(hook, standin, "en")
        admin.chat_id = ADMIN_ID
        admin.send("/reload")
        refused = admin.last().text
        assert re.match(r"Not reloaded: \d+ problem\(s\); still serving the dialogs loaded before\.\n", refused)
        assert f"cardholder.yaml:{line}:11: state 'days' goes to unknown state 'amout'" in refused
        content._replace("cardholder.yaml", "    next: amout\n", "    next: amount\n")
        admin.send("/reload")
        assert re.fullmatch(r"Reloaded in \d+\.\d\d s: \d+ flows, \d+ states, \d+ texts\.", admin.last().text)

        assert hook.process.poll() is None, "SIGHUP must not stop the process"
        assert hook.get("/healthz").status_code == 200
        assert "Traceback" not in hook.logs()
    finally:
        stop_webhook(hook)
