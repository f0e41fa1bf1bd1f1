"""Charts as PNG bytes: the balance over time of each repayment option (and any line chart).

Rendered with matplotlib's Agg backend on a `Figure` of its own, never through
pyplot, so nothing global is touched and renders may run in worker threads. Every
text is passed in already translated: the caller owns the language.

Chinese needs a CJK font that the image is sure to have, so the font comes with the
project's own dependencies (Noto Sans SC from `pylopdf-fonts-zh-cn`), never from the
system, and is given to each text by file path.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.numbers import format_decimal
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, MaxNLocator
from pylopdf_fonts_zh_cn import sans_path

from bot.engine.calculator import RepaymentOption

# Telegram shows photos up to about 1280 px wide; 960×600 stays sharp on a phone.
SIZE_INCHES = (6.4, 4.0)
DPI = 150
# Colour-blind-safe (Okabe–Ito), with line styles as well so print-outs stay readable.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
STYLES = ("-", "-.", ":")  # "--" is kept for plans that never clear


@dataclass(frozen=True)
class Series:
    """One line: its legend text and its y values at x = 0, 1, 2, …"""

    label: str
    values: tuple[float, ...]
    dashed: bool = False  # e.g. a plan that never clears


@dataclass(frozen=True)
class ChartLabels:
    """The translated texts of a chart; `legend` has one entry per option, in order."""

    title: str
    x_axis: str
    y_axis: str
    legend: tuple[str, ...]


@cache
def cjk_font_path() -> Path:
    """The bundled Noto Sans SC file (covers Latin, digits and ¥ as well as Chinese)."""
    return Path(sans_path())


@cache
def _font(size: float) -> FontProperties:
    return FontProperties(fname=cjk_font_path(), size=size)


def balance_chart(options: Sequence[RepaymentOption], locale: str, labels: ChartLabels) -> bytes:
    """A PNG of what is still owed after each month, one line per option.

    Options that never clear are drawn dashed over the longest plan, so the rising (or
    flat) balance shows why. Raises ValueError when `labels.legend` does not match.
    """
    if len(labels.legend) != len(options):
        raise ValueError(f"{len(options)} options but {len(labels.legend)} legend texts")
    series = [
        Series(label, tuple(float(value) for value in option.balances), dashed=not option.clears)
        for option, label in zip(options, labels.legend, strict=True)
    ]
    return line_chart(series, locale, labels.title, labels.x_axis, labels.y_axis)


def line_chart(series: Sequence[Series], locale: str, title: str, x_axis: str, y_axis: str) -> bytes:
    """A PNG line chart with whole-number x (months, days) and locale-formatted y values.

    General enough for the usage statistics as well as the calculator.
    """
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    # Fixed margins instead of a layout engine: one draw instead of two (a third faster),
    # and room enough for a ¥9,999,999 tick label and a two-line axis title.
    figure.subplots_adjust(left=0.15, right=0.97, bottom=0.13, top=0.9)
    FigureCanvasAgg(figure)  # attaches itself to the figure: Agg, whatever the global backend
    axes = figure.add_subplot()
    for index, line in enumerate(series):
        style = "--" if line.dashed else STYLES[index % len(STYLES)]
        axes.plot(
            range(len(line.values)),
            line.values,
            label=line.label,
            color=COLOURS[index % len(COLOURS)],
            linestyle=style,
            linewidth=2,
        )
    axes.set_title(title, fontproperties=_font(13))
    axes.set_xlabel(x_axis, fontproperties=_font(10))
    axes.set_ylabel(y_axis, fontproperties=_font(10))
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _number(value, locale)))
    axes.grid(True, alpha=0.3)
    for tick in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        tick.set_fontproperties(_font(9))
    if series:
        axes.legend(prop=_font(9), frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _number(value: float, locale: str) -> str:
    """Axis numbers grouped the locale's way, without decimals (20,000)."""
    return str(format_decimal(Decimal(round(value)), format="#,##0", locale=locale))
