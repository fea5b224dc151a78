"""Geometry of the stacked bar chart, shared by the SVG in HTML and the vector drawing in PDF.

Coordinates are in chart units with the origin at the top left and y growing downwards, the
way SVG draws. The PDF renderer scales the same numbers to millimetres, so both outputs show
the same bars, grid lines and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from idsentry.i18n import Locale
from idsentry.reports.assess import SEVERITIES, ChartMonth
from idsentry.reports.text import short_month, text
from idsentry.services.risk import Severity

WIDTH = 640.0
HEIGHT = 290.0
_LEFT = 40.0
_RIGHT = 10.0
_TOP = 14.0
_PLOT_BOTTOM = 210.0
_BAR_SHARE = 0.62
_GRID_LINES = 4
# Font sizes of the axis labels and the legend, in chart units.
LABEL_SIZE = 11.0
LEGEND_TEXT_SIZE = 12.0
LEGEND_SQUARE = 11.0
# The maximum number of month labels that fit under the plot side by side.
MAX_MONTH_LABELS = 12
# The width a year label needs, so the first month's year is left out when the next
# January's label would overlap it.
_YEAR_LABEL_ROOM = 36.0

# Fill colours per severity. Each has a text label in the legend, so colour is never the only cue.
SEVERITY_COLORS: dict[Severity, str] = {
    Severity.CRITICAL: "#7f1d1d",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#f59e0b",
    Severity.LOW: "#60a5fa",
}
AXIS_COLOR = "#6b7280"
GRID_COLOR = "#e5e7eb"
TEXT_COLOR = "#374151"


@dataclass(frozen=True)
class Bar:
    """One severity's part of one month's stack."""

    x: float
    y: float
    width: float
    height: float
    severity: Severity
    month: str
    count: int


@dataclass(frozen=True)
class Label:
    """A text whose baseline starts, centres or ends at (x, y), as SVG's text-anchor says."""

    x: float
    y: float
    text: str
    anchor: str


@dataclass(frozen=True)
class GridLine:
    """A horizontal grid line at `y` for the count `value`."""

    y: float
    value: int


@dataclass(frozen=True)
class LegendEntry:
    """A colour square at (x, y) and its label."""

    x: float
    y: float
    severity: Severity
    label: Label


@dataclass(frozen=True)
class ChartLayout:
    """Everything to draw, in chart units."""

    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    bars: tuple[Bar, ...]
    grid: tuple[GridLine, ...]
    labels: tuple[Label, ...]
    legend: tuple[LegendEntry, ...]


def grid_step(maximum: int) -> int:
    """Return the smallest step of 1, 2 or 5 times a power of ten whose four lines reach `maximum`."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if step * _GRID_LINES >= maximum:
                return step
        magnitude *= 10


def layout_chart(months: tuple[ChartMonth, ...], locale: Locale) -> ChartLayout:
    """Lay out the stacked bars of the months, the count grid, the month labels and the legend."""
    step = grid_step(max((month.total for month in months), default=0))
    top_value = step * _GRID_LINES
    plot_height = _PLOT_BOTTOM - _TOP
    plot_width = WIDTH - _LEFT - _RIGHT
    slot = plot_width / max(len(months), 1)
    bar_width = slot * _BAR_SHARE
    # Past MAX_MONTH_LABELS months, only every n-th month is labelled, so labels never overlap.
    label_every = max(1, -(-len(months) // MAX_MONTH_LABELS))

    bars: list[Bar] = []
    labels: list[Label] = []
    for index, month in enumerate(months):
        x = _LEFT + index * slot + (slot - bar_width) / 2
        base = _PLOT_BOTTOM
        # Critical sits at the bottom of each stack, where it is easiest to compare.
        for severity in SEVERITIES:
            count = month.counts.get(severity, 0)
            if count == 0:
                continue
            height = plot_height * count / top_value
            base -= height
            bars.append(Bar(x, base, bar_width, height, severity, month.key, count))
        center = _LEFT + index * slot + slot / 2
        if index % label_every == 0:
            labels.append(
                Label(center, _PLOT_BOTTOM + 16, short_month(locale, month.month), "middle")
            )
        if month.month == 1 or (index == 0 and (13 - month.month) * slot >= _YEAR_LABEL_ROOM):
            labels.append(Label(center, _PLOT_BOTTOM + 30, str(month.year), "middle"))

    grid = tuple(
        GridLine(_PLOT_BOTTOM - plot_height * line / _GRID_LINES, step * line)
        for line in range(_GRID_LINES + 1)
    )
    labels.extend(Label(_LEFT - 6, line.y + 4, str(line.value), "end") for line in grid)

    legend: list[LegendEntry] = []
    legend_y = HEIGHT - 22
    for index, severity in enumerate(SEVERITIES):
        x = _LEFT + index * (plot_width / len(SEVERITIES))
        label = Label(
            x + LEGEND_SQUARE + 6,
            legend_y + LEGEND_SQUARE - 1,
            text(locale, f"severity.{severity.value}"),
            "start",
        )
        legend.append(LegendEntry(x, legend_y, severity, label))

    return ChartLayout(
        width=WIDTH,
        height=HEIGHT,
        plot_left=_LEFT,
        plot_right=WIDTH - _RIGHT,
        plot_top=_TOP,
        plot_bottom=_PLOT_BOTTOM,
        bars=tuple(bars),
        grid=grid,
        labels=tuple(labels),
        legend=tuple(legend),
    )
