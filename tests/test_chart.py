"""The calculator's chart: a real PNG a phone can show, with Chinese that renders (no missing glyphs)."""

from __future__ import annotations

import io
import warnings
from decimal import Decimal

import pytest
from PIL import Image

from bot.channels.chart import ChartLabels, Series, balance_chart, cjk_font_path, line_chart
from bot.engine.calculator import calculate
from bot.spec.model import ProductCosts
from bot.spec.rates import CalculatorRates

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COSTS = {name: ProductCosts(Decimal("0.0005")) for name in ("credit_card", "huabei", "other_loan")}

ZH = ChartLabels(
    title="每月还剩多少欠款",
    x_axis="月数",
    y_axis="剩余欠款（¥）",
    legend=("按合同利率每月还款", "银行账单分期，12期", "个性化分期，14个月（需银行同意）"),
)


def render(labels: ChartLabels, payment: int = 1500, product: str = "credit_card", locale: str = "zh_CN") -> bytes:
    calc = calculate(Decimal(20000), Decimal(payment), product, CalculatorRates(), COSTS)
    return balance_chart(calc.options, locale, labels)


def glyph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "glyph" in str(w.message).lower()]


def test_the_chart_is_a_png_a_phone_can_show() -> None:
    png = render(ZH)
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert (image.width, image.height) == (960, 600)
    assert 20_000 < len(png) < 1_000_000  # a real drawing, well under Telegram's 10 MB photo limit


def test_chinese_labels_render_without_missing_glyphs() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render(ZH)
    assert glyph_warnings(caught) == []


def test_the_font_ships_with_the_dependencies_not_the_system() -> None:
    path = cjk_font_path()
    assert path.is_file() and "site-packages" in str(path)
    assert path.name == "NotoSansSC-Regular.otf"


def test_english_and_a_never_clearing_plan_render_too() -> None:
    labels = ChartLabels(
        "What you still owe, month by month",
        "Months",
        "Still owed (¥)",
        ("Repaying monthly", "Huabei, 3", "Huabei, 6", "Huabei, 9", "Huabei, 12 (check the figure in Alipay)"),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render(labels, payment=100, product="huabei", locale="en")
    assert glyph_warnings(caught) == []
    assert Image.open(io.BytesIO(png)).size == (960, 600)


def test_different_plans_draw_different_pictures() -> None:
    assert render(ZH, payment=1500) != render(ZH, payment=3000)


def test_a_legend_that_does_not_match_the_options_is_refused() -> None:
    with pytest.raises(ValueError, match="3 options but 1 legend"):
        render(ChartLabels("t", "x", "y", ("only one",)))


def test_a_general_line_chart_for_other_figures() -> None:
    png = line_chart([Series("每日对话数", (3, 5, 8, 13))], "zh_CN", "使用统计", "天", "次数")
    assert png.startswith(PNG_SIGNATURE)
    assert line_chart([], "en", "Nothing yet", "Days", "Count").startswith(PNG_SIGNATURE)
