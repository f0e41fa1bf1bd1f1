"""`python -m bot stats` as an operator runs it, on a real SQLite file seeded through the
store API (tests/support/funnel_seed.py): text, JSON, `--since`, `--chart`."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main as bot_cli
from bot.engine.engine import Engine
from tests.support.cli import run_bot
from tests.support.funnel_seed import seed


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> str:
    path = tmp_path_factory.mktemp("stats") / "bot.sqlite3"
    asyncio.run(seed(path, engine))
    return f"sqlite:///{path}"


def test_text_report_and_chart(database: str, tmp_path: Path) -> None:
    chart = tmp_path / "funnel.png"
    # The events carry the chat only as a hash; the key that made them is not needed to read them.
    result = run_bot("stats", "--database-url", database, "--lang", "en", "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("All conversations\nStarted 6 · plan shown 2 (33%) · finished 1\n")
    assert "Conversations stored now: 5" in out  # five chats; the restarted one keeps one row
    assert "cardholder.amount              3         1              2\n" in out
    assert "Unstable income                                2   100%     30%\n" in out
    image = Image.open(io.BytesIO(chart.read_bytes()))
    assert image.format == "PNG" and image.width == 770 and image.height > 900


def test_json_and_since(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert bot_cli(["stats", "--database-url", database, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["conversations"] == {"started": 6, "plan_shown": 2, "finished": 1}
    assert data["active_conversations"] == 5
    assert data["median_seconds_to_plan"] == 230.0
    assert [q["state"] for q in data["questions"]][:4] == [
        "start.role",
        "cardholder.product",
        "cardholder.days",
        "cardholder.amount",
    ]
    assert data["followups"] == {"agreed": 2, "no_answer": 1}

    # A date is midnight UTC; a time with its offset is taken as it is.
    assert bot_cli(["stats", "--database-url", database, "--format", "json", "--since", "2025-05-01"]) == 0
    assert json.loads(capsys.readouterr().out)["conversations"]["started"] == 6
    since = ["--since", "2025-05-01T17:02:00+08:00"]  # 09:02 UTC: one conversation starts later
    assert bot_cli(["stats", "--database-url", database, "--format", "json", *since]) == 0
    later = json.loads(capsys.readouterr().out)
    assert later["conversations"] == {"started": 1, "plan_shown": 0, "finished": 0}
    assert later["since"] == "2025-05-01T17:02:00+08:00"


def test_a_bad_date_is_a_usage_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bot_cli(["stats", "--database-url", database, "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "not a date: 'last tuesday'" in capsys.readouterr().err
