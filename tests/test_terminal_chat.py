"""`python -m bot chat` as a user meets it: piped, interactive (a real pty), both languages."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bot.runtime import PROJECT_ROOT
from tests.support.cli import run_bot


def _chat(stdin: str, *args: str, env: dict[str, str] | None = None, db: Path) -> subprocess.CompletedProcess[str]:
    return run_bot("chat", *args, stdin=stdin, env={**(env or {}), "DATABASE_URL": f"sqlite:///{db}"})


def test_piped_chinese_conversation_to_the_plan(tmp_path: Path) -> None:
    lines = ["1", "1", "两个月", "两万三", "上个月被裁员了，一直没找到工作", "没有", "没有", "没有", "是", "话术"]
    result = _chat("\n".join(lines) + "\n", "--lang", "zh", db=tmp_path / "chat.sqlite3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "请问您是？" in out and "  1. 我有一笔还款逾期了" in out
    assert "逾期多少天了？" in out
    # Typed numbers are read back, so a misreading can be caught at once.
    assert "好的：逾期60天（如有误，发送 /back 修改）。" in out
    assert "好的：¥23,000.00（如有误，发送 /back 修改）。" in out
    # The plan opens with a short summary: the top cause with the person's own evidence,
    # what was understood (两个月 → 60天, 两万三 → ¥23,000), and a step menu; no ranking bars.
    summary = out[out.index("方案概要。") :]
    assert summary.startswith("方案概要。这次逾期最可能的原因是：收入不稳定。您提到自己失业了，或者没有活干了。")
    assert "我了解到的情况：信用卡，已逾期60天，欠款约¥23,000.00。" in summary
    assert "今天最要紧的一件事：给银行打电话" in summary
    assert "我们一步一步来看这个方案，好吗？\n  1. 下一步\n  2. 沟通话术\n  3. 还款计算器" in summary
    assert "▇" not in out
    # "话术" from the menu: the call script, each phrase on its own quoted line, built from
    # the person's facts and the hardship they reported; then the same menu again.
    script = out[out.index("> 话术") :]
    assert "  │ 您好，我的信用卡目前逾期60天，欠款约¥23,000.00。我有还款意愿。" in script
    assert "  │ 我最近几个月收入不太稳定。" in script
    assert "原因是" not in script  # never a cause label in the words for the bank
    assert script.rstrip().endswith("  3. 还款计算器")
    assert "Traceback" not in result.stderr
    # The operator's anonymous counts: one conversation, one plan led by its top cause
    # (counted once, although the conversation went on after the summary).
    stats = run_bot("stats", "--format", "json", "--database-url", f"sqlite:///{tmp_path / 'chat.sqlite3'}")
    funnel = json.loads(stats.stdout)
    assert funnel["conversations"] == {"started": 1, "plan_shown": 1, "finished": 0}
    assert [(c["id"], c["conversations"]) for c in funnel["causes"] if c["conversations"]] == [("unstable_income", 1)]


def test_piped_english_conversation_reprompts_and_goes_back(tmp_path: Path) -> None:
    lines = ["1", "2", "a while", "about 6 weeks", "/back", "3 weeks", "skip"]
    result = _chat("\n".join(lines) + "\n", "--lang", "en", db=tmp_path / "chat.sqlite3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "! I need a number of days, e.g. 45 or 两个月." in out
    assert out.count("About how much is overdue?") == 2  # asked, then asked again after /back
    assert out.count("How many days is it overdue?") == 3
    assert "In your own words" in out


def test_empty_input_ends_cleanly_after_the_greeting(tmp_path: Path) -> None:
    result = _chat("", "--lang", "en", db=tmp_path / "chat.sqlite3")
    assert result.returncode == 0
    assert "Who are you?" in result.stdout
    assert result.stderr == ""


def test_language_comes_from_the_terminal_locale_chinese_when_unknown(tmp_path: Path) -> None:
    english = _chat("", env={"LANG": "en_GB.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}, db=tmp_path / "a.sqlite3")
    assert "Who are you?" in english.stdout
    unknown = _chat("", env={"LANG": "C", "LC_ALL": "", "LC_MESSAGES": ""}, db=tmp_path / "b.sqlite3")
    assert "请问您是？" in unknown.stdout


def test_interactive_session_in_a_real_terminal(tmp_path: Path) -> None:
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'tty.sqlite3'}"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat on a terminal
        os.chdir(PROJECT_ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "bot", "chat", "--lang", "en"], environment)

    def read_until(marker: str, timeout: float = 60) -> str:
        seen = b""
        deadline = time.monotonic() + timeout
        while marker.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        return seen.decode("utf-8", errors="replace")

    try:
        assert "> " in read_until("> ")
        os.write(fd, b"1\n")
        screen = read_until("Another loan")
        assert "Which repayment is overdue?" in screen
        os.write(fd, b"huabei\n")
        assert "How many days is it overdue?" in read_until("More than 6 months")
        os.write(fd, b"\x04")  # Ctrl-D: EOF ends the chat
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        os.close(fd)


def test_the_terminal_knows_the_same_commands_as_telegram(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    result = _chat("1\n/lang zh\n/language@overdue_advisor_bot en\n/nonsense\n/forget\n", "--lang", "en", db=db)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # /lang is /language: the question is asked again in Chinese, then in English.
    assert "Which repayment is overdue?" in out
    assert out.index("哪一笔还款逾期了？") < out.rindex("Which repayment is overdue?")
    assert "Done: everything about you has been erased." in out
    assert "I don't know that command." in out
    # /forget erased the conversation: nothing is left in the store.
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
