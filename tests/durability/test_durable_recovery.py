"""Sessions the running code cannot continue are recovered, never a crash loop: a state
an operator removed from the YAML, and a row that is not a session at all. The user is
told the advisor was updated, gets the first question again, and the next answers work."""

from __future__ import annotations

from pathlib import Path

from bot.cli import main as bot_cli
from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from tests.support.durability_support import (
    Bots,
    Database,
    FaultyStandIn,
    Texts,
    copy_dialogs,
    handled,
    replace_once,
    user_at_amount,
)
from tests.support.tg_harness import ROOT, TgUser, Webhook, stop_webhook


def _assert_restarted(user: TgUser, seen: int, texts: Texts) -> None:
    """The replies since message `seen`: the "updated" notice, then the first question."""
    replies = user.messages()[seen:]
    assert replies, "the user got no answer"
    whole = "\n\n".join(m.text for m in replies)
    assert whole.count(texts.message("session_updated")) == 1, whole
    assert whole.index(texts.message("session_updated")) < whole.index(texts.ask("start", "role"))
    assert replies[-1].text.endswith(texts.ask("start", "role"))
    assert [label for label, _ in replies[-1].buttons] == [
        "I have an overdue repayment",
        "I am bank staff helping an overdue customer",
    ]


def _assert_healthy(hook: Webhook) -> None:
    """Still running, healthy, and no update crashed or was left for re-delivery."""
    assert hook.process.poll() is None, hook.logs()
    assert hook.get("/healthz").status_code == 200
    assert handled(hook, "error") == handled(hook, "retry") == 0
    assert "Traceback" not in hook.logs()


def test_state_removed_from_the_yaml_and_corrupted_rows_recover(
    bots: Bots, standin: FaultyStandIn, database: Database, content: tuple[Engine, Localizer], tmp_path: Path
) -> None:
    texts = Texts(content)
    dialogs = copy_dialogs(ROOT / "dialogs", tmp_path / "dialogs")
    env = bots.env(DIALOGS_DIR=str(dialogs))
    hook = bots.start(env)
    user, key, old_version = user_at_amount(hook, standin, texts, database)

    # The operator renames the state the user is in, keeping the dialogs valid.
    stop_webhook(hook)
    flow = dialogs / "cardholder.yaml"
    replace_once(flow, "\n  amount:\n    ask:", "\n  amount_v2:\n    ask:")
    replace_once(flow, "\n    next: amount\n", "\n    next: amount_v2\n")
    assert bot_cli(["validate", str(dialogs)]) == 0

    hook = bots.start(env)
    user.hook = hook
    seen = len(user.messages())
    user.send("15000")  # the answer to a question that no longer exists
    _assert_restarted(user, seen, texts)
    stored = database.session(key)
    assert stored is not None
    restarted, version = stored
    assert (restarted.flow, restarted.state, restarted.slots) == ("start", "role", {})
    assert version == old_version + 1

    # The next answers work, through to the renamed state.
    for text, expected in (("1", "product"), ("credit card", "days"), ("45", "amount")):
        user.send(text)
        # amount_v2 asks amount's question (after a typed number, maybe after a read-back)
        assert user.last().text.endswith(texts.ask("cardholder", expected))
    stored = database.session(key)
    assert stored is not None
    assert stored[0].state == "amount_v2"
    assert stored[0].slots == {"role": "cardholder", "product": "credit_card", "days_overdue": 45}
    assert texts.message("session_updated") not in user.last().text
    _assert_healthy(hook)

    # A row that is not a session at all (written behind the bot's back) recovers the same way.
    other = TgUser(hook, standin, "en")
    other_key = f"tg:{other.chat_id}"
    other.send("/start")
    other.send("1")
    assert other.last().text == texts.ask("cardholder", "product")
    database.damage(other_key)
    seen = len(other.messages())
    other.send("credit card")
    _assert_restarted(other, seen, texts)
    stored = database.session(other_key)
    assert stored is not None
    assert (stored[0].flow, stored[0].state, stored[0].slots) == ("start", "role", {})
    other.send("1")
    assert other.last().text == texts.ask("cardholder", "product")
    other.send("huabei")
    assert other.last().text == texts.ask("cardholder", "days")
    stored = database.session(other_key)
    assert stored is not None
    assert stored[0].slots == {"role": "cardholder", "product": "huabei"}
    _assert_healthy(hook)
