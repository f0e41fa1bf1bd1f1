"""The funnel report as a PNG: where conversations go and stop, and causes against the source.

What it shows is `bot.stats.report.ReportChart` (numbers and translated labels, so it
can wait in an outbox without matplotlib); this module only draws it, like the
calculator's chart (`bot.channels.chart`): matplotlib's Agg canvas on a `Figure` of its
own (safe in a worker thread), with the project's bundled CJK font from that module,
so Chinese labels render whatever fonts the system has.
"""

from __future__ import annotations

import io
from functools import cache

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.channels.chart import COLOURS, cjk_font_path
from bot.i18n.catalog import Localizer
from bot.stats.report import FunnelReport, ReportChart, chart_of

WIDTH_INCHES = 7.0
ROW_INCHES = 0.26  # one bar row; the figure grows with the number of questions
DPI = 110


@cache
def _font(size: float) -> FontProperties:
    return FontProperties(fname=cjk_font_path(), size=size)


def report_png(report: FunnelReport, localizer: Localizer, locale: str) -> bytes:
    """The report's chart as PNG bytes."""
    return draw(chart_of(report, localizer, locale))


def draw(chart: ReportChart) -> bytes:
    """Two panels: the funnel (bars per step, first at the top) and causes vs source."""
    funnel_rows, cause_rows = len(chart.steps), max(len(chart.causes), 1)
    height = 1.6 + ROW_INCHES * (funnel_rows + 2 * cause_rows)
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)  # Agg, whatever the global backend
    grid = figure.add_gridspec(2, 1, height_ratios=[funnel_rows, 2 * cause_rows + 1], hspace=0.35)
    figure.subplots_adjust(left=0.3, right=0.95, top=1 - 0.45 / height, bottom=0.5 / height)
    _funnel(figure.add_subplot(grid[0]), chart)
    _causes(figure.add_subplot(grid[1]), chart)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _funnel(axes: Axes, chart: ReportChart) -> None:
    rows = range(len(chart.steps))
    reached = [step.reached for step in chart.steps]
    answered = [step.answered or 0 for step in chart.steps]
    axes.barh(rows, reached, height=0.8, color=COLOURS[5], label=chart.reached_legend)
    axes.barh(rows, answered, height=0.45, color=COLOURS[0], label=chart.answered_legend)
    for row, count in zip(rows, reached, strict=True):
        axes.annotate(str(count), (count, row), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    axes.set_yticks(list(rows), [step.label for step in chart.steps])
    axes.invert_yaxis()  # the first step on top
    axes.set_xlim(0, max([*reached, 1]) * 1.12)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(chart.title, fontproperties=_font(12))
    axes.legend(prop=_font(8), frameon=False, loc="lower right")
    _style(axes)


def _causes(axes: Axes, chart: ReportChart) -> None:
    rows = range(len(chart.causes))
    shares, sources = [c.share for c in chart.causes], [c.source_share for c in chart.causes]
    axes.barh([r - 0.2 for r in rows], shares, 0.4, color=COLOURS[1], label=chart.share_legend)
    axes.barh([r + 0.2 for r in rows], sources, 0.4, color=COLOURS[2], label=chart.source_legend)
    axes.set_yticks(list(rows), [c.label for c in chart.causes])
    axes.invert_yaxis()
    top = max([*shares, *sources, 0.1])
    axes.set_xlim(0, min(1.0, top * 1.15))
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_title(chart.causes_title, fontproperties=_font(12))
    axes.legend(prop=_font(8), frameon=False, loc="lower right")
    _style(axes)


def _style(axes: Axes) -> None:
    axes.grid(True, axis="x", alpha=0.3)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for tick in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        tick.set_fontproperties(_font(8))
