"""Catalogs: the Babel workflow over dialog YAML, completeness, formatting by locale."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from babel.messages.pofile import read_po

from bot.engine.engine import Engine
from bot.engine.turn import Days, Money, Msg, Percent
from bot.i18n.catalog import Localizer, normalize_locale
from bot.runtime import PROJECT_ROOT
from bot.spec.model import placeholders


def test_every_dialog_text_has_a_chinese_translation_with_the_same_placeholders(
    engine: Engine, localizer: Localizer
) -> None:
    msgids = {msgid for msgid, _ in engine.spec.texts}
    assert len(msgids) > 100
    assert localizer.missing(msgids, "zh_CN") == []
    for msgid in msgids:
        translated = localizer.translate(msgid, "zh_CN")
        assert placeholders(translated) == placeholders(msgid), msgid
        assert "***" not in translated and "***" not in msgid


def test_the_source_phrases_for_staff_are_verbatim(localizer: Localizer, engine: Engine) -> None:
    chinese = {localizer.translate(msgid, "zh_CN") for msgid, _ in engine.spec.texts}
    for phrase in (
        "请您告诉我具体的逾期情况，逾期的原因是什么？您逾期的时长和金额是多少？",
        "咱们能够为您制定一个合理的还款计划，让您逐步偿还逾期金额，避免进一步逾期。",
        "期望您能配合我们的解决方案，准时还款，避免再次逾期。我们会全力支持您，恢复您的信用。",
    ):
        assert phrase in chinese


def test_pybabel_extract_reads_dialog_yaml_through_the_registered_extractor(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-o", str(pot), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with pot.open("rb") as handle:
        catalog = read_po(handle)
    ids = {message.id for message in catalog if message.id}
    assert "Which repayment is overdue? If there are several, pick the one that worries you most." in ids
    assert "I need a number of days, e.g. 45 or 两个月." in ids
    located = next(m for m in catalog if m.id == "Credit card")
    assert any(path.endswith("cardholder.yaml") and line > 0 for path, line in located.locations)


def test_pybabel_update_and_compile_keep_translations(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(PROJECT_ROOT / "locales", locales)
    pybabel = str(Path(sys.executable).parent / "pybabel")
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [pybabel, "extract", "-F", "babel.cfg", "-o", str(pot), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [pybabel, "update", "-i", str(pot), "-d", str(locales), "-l", "zh_CN", "--no-fuzzy-matching"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [pybabel, "compile", "-d", str(locales), "-l", "zh_CN"], check=True, capture_output=True, timeout=120
    )
    assert (locales / "zh_CN" / "LC_MESSAGES" / "messages.mo").exists()
    updated = Localizer.load(locales)
    assert updated.translate("Credit card", "zh_CN") == "信用卡"
    po_text = (locales / "zh_CN" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    assert "Language: zh_CN" in po_text  # the header survives the update


def test_amounts_days_and_shares_are_formatted_per_locale(localizer: Localizer) -> None:
    msg = Msg("{amount} {days} {share}", {"amount": Money(Decimal(15000)), "days": Days(45), "share": Percent(0.52)})
    assert localizer.text(msg, "zh_CN") == "¥15,000.00 45天 52%"
    assert localizer.text(msg, "en") == "CN¥15,000.00 45 days 52%"
    assert localizer.value(Days(1), "en") == "1 day"


def test_a_missing_value_shows_a_dash_not_an_error(localizer: Localizer) -> None:
    assert localizer.text(Msg("You owe {amount}."), "en") == "You owe —."


def test_user_language_codes_pick_a_locale(localizer: Localizer) -> None:
    assert localizer.locale_for("zh-hans") == "zh_CN"
    assert localizer.locale_for("zh-TW") == "zh_CN"
    assert localizer.locale_for("en-GB") == "en"
    assert localizer.locale_for("de") == "en"
    assert localizer.locale_for(None) == "zh_CN"
    assert normalize_locale("zh_CN.UTF-8") == "zh_CN"
