"""The funnel statistics: what a turn counts (nothing a person typed), and the report on a
real SQLite store seeded through the store API: exact numbers, both languages, a PNG."""

from __future__ import annotations

import asyncio
import io
import json
import unicodedata
import warnings
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from PIL import Image

from bot.engine.engine import Engine
from bot.engine.events import Chose, Command, CommandName, Event, Said, Start
from bot.engine.session import Session
from bot.i18n.catalog import Localizer
from bot.runtime import PROJECT_ROOT
from bot.stats.chart import draw, report_png
from bot.stats.funnel import AMOUNT_BANDS, DAY_BANDS, band_of, funnel_events
from bot.stats.report import (
    FunnelReport,
    QuestionRow,
    ReportChart,
    build_report,
    chart_of,
    render_sections,
    render_summary,
    render_text,
)
from bot.store.base import EventRecord
from bot.store.sqlite import SqliteStore
from tests.support.funnel_seed import START, TURN, seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Walk:
    """One conversation through the real engine, keeping each turn's funnel events."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: Session | None = None

    def send(self, event: Event) -> list[str]:
        before = self.session
        turn = self.engine.handle(before or self.engine.new_session("en"), event)
        self.session = turn.session
        return [count.name for count in funnel_events(self.engine, event, turn, before)]

    def say(self, text: str) -> list[str]:
        return self.send(Said(text))


# ------------------------------------------------------------------ what a turn counts


def test_each_turn_counts_where_the_conversation_went(engine: Engine) -> None:
    walk = Walk(engine)
    assert walk.send(Start("en")) == ["conversation_started", "asked.start.role"]
    assert walk.say("1") == ["answered.start.role", "asked.cardholder.product"]
    assert walk.say("credit card") == [
        "answered.cardholder.product",
        "product.credit_card",
        "asked.cardholder.days",
    ]
    # Numbers only as bands: 45 days is in 31–60, ¥15,000 in 5,001–20,000.
    assert walk.say("45天") == ["answered.cardholder.days", "overdue.31_60", "asked.cardholder.amount"]
    assert walk.say("1.5万") == ["answered.cardholder.amount", "amount.5001_20000", "asked.cardholder.story"]


def test_a_reprompt_a_stale_button_and_help_count_nothing(engine: Engine) -> None:
    walk = Walk(engine)
    walk.send(Start("en"))
    walk.say("1")
    assert walk.say("a while") == []  # not an answer: the question is asked again
    assert walk.send(Chose(0, 0)) == []  # a button from an older message
    assert walk.send(Command(CommandName.HELP)) == []


def test_back_asks_again_without_a_new_conversation_and_restart_starts_one(engine: Engine) -> None:
    walk = Walk(engine)
    walk.send(Start("en"))
    walk.say("1")
    walk.say("huabei")
    assert walk.send(Command(CommandName.BACK)) == ["asked.cardholder.product"]
    assert walk.send(Command(CommandName.RESTART)) == ["conversation_started", "asked.start.role"]


def test_the_plan_counts_its_top_cause_and_an_end_state_counts_finished(engine: Engine) -> None:
    walk = Walk(engine)
    walk.send(Start("en"))
    walk.say("2")  # bank staff
    walk.say("Unstable income")
    walk.say("120")
    assert walk.say("skip") == ["answered.staff.amount", "plan_shown.staff.unstable_income", "finished.staff"]


def test_nothing_a_person_typed_is_counted(engine: Engine) -> None:
    walk = Walk(engine)
    story = "I lost my job at the noodle factory in Wuhan"
    names = [*walk.send(Start("en")), *walk.say("1"), *walk.say("credit card"), *walk.say("45")]
    names += [*walk.say("23456"), *walk.say(story)]
    assert "answered.cardholder.story" in names
    words = {word.lower() for word in story.split()} | {"23456", "23,456"}
    assert not [name for name in names if any(part in words for part in name.split("."))], names


def test_bands_cover_every_number_once() -> None:
    for bands in (DAY_BANDS, AMOUNT_BANDS):
        for value in (0, 1, 30, 31, 5000, 5001, 10**9):
            assert sum(band.holds(Decimal(value)) for band in bands) == 1
    assert band_of(30, DAY_BANDS).key == "le_30"  # type: ignore[union-attr]
    assert band_of(31, DAY_BANDS).key == "31_60"  # type: ignore[union-attr]
    assert band_of(400, DAY_BANDS).label == ">365"  # type: ignore[union-attr]
    assert band_of(25000, AMOUNT_BANDS).label == "20,001–50,000"  # type: ignore[union-attr]
    assert band_of(True, DAY_BANDS) is None and band_of("x", AMOUNT_BANDS) is None


# ------------------------------------------------------------------ the report on a seeded store


def _events(path: Path) -> list[EventRecord]:
    async def read() -> list[EventRecord]:
        store = SqliteStore(f"sqlite:///{path}", hash_key=b"funnel-test")
        await store.open()
        try:
            return await store.events()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> list[EventRecord]:
    path = tmp_path_factory.mktemp("funnel") / "bot.sqlite3"
    asyncio.run(seed(path, engine))
    return _events(path)


@pytest.fixture(scope="module")
def report(seeded: list[EventRecord], engine: Engine) -> FunnelReport:
    return build_report(seeded, engine.spec, active=6)


# The seeded conversations (tests/support/funnel_seed.py): a cardholder to the plan; one who
# stops at the amount; bank staff to the end; one chat with two conversations (/restart);
# one who went /back and answered the days again.
QUESTIONS = [
    {"state": "start.role", "reached": 6, "answered": 5, "stopped": 1},
    {"state": "cardholder.product", "reached": 4, "answered": 3, "stopped": 1},
    {"state": "cardholder.days", "reached": 3, "answered": 3, "stopped": 0},
    {"state": "cardholder.amount", "reached": 3, "answered": 1, "stopped": 2},
    {"state": "cardholder.story", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "cardholder.reminder", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "cardholder.shopping", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "cardholder.loans", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "cardholder.budget", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "cardholder.menu_summary", "reached": 1, "answered": 0, "stopped": 1},
    {"state": "staff.cause", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "staff.days", "reached": 1, "answered": 1, "stopped": 0},
    {"state": "staff.amount", "reached": 1, "answered": 1, "stopped": 0},
]


def test_the_funnel_of_a_seeded_store_is_exact(report: FunnelReport) -> None:
    data = report.as_json()
    assert data["conversations"] == {"started": 6, "plan_shown": 2, "finished": 1}
    assert data["questions"] == QUESTIONS
    # The cardholder's plan 28 turns of 10 s after their start, the staff's 18: median 230 s.
    assert data["median_seconds_to_plan"] == 230.0
    assert data["products"] == {"credit_card": 1, "huabei": 1, "other_loan": 1}
    # After /back the new answer counts (200 days), not the first (3 weeks).
    assert data["overdue_days"] == {"le_30": 1, "31_60": 1, "91_180": 1, "181_365": 1}
    assert data["amounts"] == {"5001_20000": 1}  # the staff member skipped the amount
    assert data["followups"] == {"agreed": 2, "no_answer": 1}


def test_causes_stand_beside_the_source_documents_shares_from_the_dialogs(report: FunnelReport, engine: Engine) -> None:
    causes = report.as_json()["causes"]
    # The source shares are causes.yaml's priors (30/25/20/15/10), in its order.
    assert [(c["id"], c["source_share"]) for c in causes] == [(c.id, c.prior) for c in engine.spec.causes]
    assert [c["source_share"] for c in causes] == [0.3, 0.25, 0.2, 0.15, 0.1]
    assert [(c["id"], c["conversations"], c["share"]) for c in causes if c["conversations"]] == [
        ("unstable_income", 2, 1.0)
    ]


def test_since_follows_only_the_conversations_started_since(seeded: list[EventRecord], engine: Engine) -> None:
    # At 09:02:00 only the restarted chat's second conversation (09:02:10) starts later.
    since = START + 12 * TURN
    later = [event for event in seeded if event.created_at >= since]
    data = build_report(later, engine.spec, since=since).as_json()
    assert data["conversations"] == {"started": 1, "plan_shown": 0, "finished": 0}
    assert data["questions"] == [{"state": "start.role", "reached": 1, "answered": 0, "stopped": 1}]
    assert data["followups"] == {"agreed": 2, "no_answer": 1}
    assert data["since"] == "2025-05-01T09:02:00+00:00"


def test_the_text_report_in_english_and_chinese(report: FunnelReport, localizer: Localizer) -> None:
    english = render_text(report, localizer, "en")
    assert english.startswith("All conversations\nStarted 6 · plan shown 2 (33%) · finished 1\n")
    assert "Conversations stored now: 6" in english
    assert "Median time to the plan: 3 min 50 s" in english
    assert "Most often stopped at: cardholder.amount (2), start.role (1), cardholder.product (1)" in english
    lines = english.splitlines()
    assert "Question                 reached  answered  stopped there" in lines
    assert "cardholder.amount              3         1              2" in lines
    assert "Unstable income                                2   100%     30%" in lines
    assert "Little money-management awareness              0     0%     10%" in lines
    assert "181–365       1" in lines and "agreed      2" in lines
    chinese = render_text(report, localizer, "zh_CN")
    assert chinese.startswith("全部对话\n开始 6 · 看到方案 2（33%）· 走完 1\n")
    assert "到看到方案的时间（中位数）：3分50秒" in chinese
    # Chinese labels are two columns wide: the numbers still line up under their heading.
    header = next(line for line in chinese.splitlines() if line.startswith("方案中的首要原因"))
    income = next(line for line in chinese.splitlines() if line.startswith("收入不稳定"))
    assert _columns(income) == _columns(header) and income.endswith("2  100%       30%")


def _columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def test_a_long_table_goes_on_under_its_header_in_messages_telegram_takes(
    report: FunnelReport, localizer: Localizer
) -> None:
    rows = tuple(QuestionRow(f"flow.question_{n}", 50 - n, 49 - n, 1) for n in range(45))
    sections = render_sections(replace(report, questions=rows), localizer, "en")
    tables = [section for section in sections if section.startswith("Question ")]
    assert [len(table.splitlines()) for table in tables] == [41, 6]  # header + 40, header + 5
    assert tables[1].splitlines()[1].startswith("flow.question_40 ")
    assert all(len(section) < 4096 for section in sections)


def test_an_empty_store_says_so(engine: Engine, localizer: Localizer) -> None:
    empty = build_report([], engine.spec, since=START + timedelta(days=1))
    assert empty.as_json()["conversations"] == {"started": 0, "plan_shown": 0, "finished": 0}
    assert empty.as_json()["median_seconds_to_plan"] is None
    text = render_text(empty, localizer, "en")
    assert text.startswith("Conversations since 2025-05-02\n") and text.endswith("No conversations in this period.")
    assert len(render_summary(empty, localizer, "zh_CN")) < 1024


def test_the_chart_is_a_png_with_chinese_that_renders(report: FunnelReport, localizer: Localizer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = report_png(report, localizer, "zh_CN")
    assert [str(w.message) for w in caught if "glyph" in str(w.message).lower()] == []
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    # 7 inches at 110 dpi; taller with every row (16 steps, 5 causes).
    assert image.width == 770 and 900 < image.height < 2000
    assert 30_000 < len(png) < 2_000_000


def test_the_chart_can_wait_in_an_outbox_as_json(report: FunnelReport, localizer: Localizer) -> None:
    chart = chart_of(report, localizer, "zh_CN")
    kept = json.loads(json.dumps(chart.as_json(), ensure_ascii=False))
    assert ReportChart.from_json(kept) == chart
    assert chart.steps[0].label == "开始" and chart.causes[0].label == "收入不稳定"
    assert draw(ReportChart.from_json(kept)).startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="not a report chart"):
        ReportChart.from_json({"steps": [{"label": "x"}]})


def test_every_operator_text_is_translated(localizer: Localizer) -> None:
    """The texts marked N_ in the report, chart and reload, as pybabel extracts them."""
    files = ["bot/stats/report.py", "bot/stats/chart.py", "bot/runtime.py"]
    msgids = [str(message) for name in files for _, message, _, _ in extract_from_file("python", PROJECT_ROOT / name)]
    assert len(msgids) > 30
    assert localizer.missing(msgids, "zh_CN") == []
    config = (PROJECT_ROOT / "babel.cfg").read_text()
    assert "[python: bot/stats/*.py]" in config and "[python: bot/runtime.py]" in config
