"""Geometry of the dashboard's server-side SVG charts (no markup in here).

Charts are drawn in a ``0..1000 x 0..100`` view box stretched to the chart's box
(``preserveAspectRatio="none"``, strokes not scaled), with one column per point. The
axis labels are HTML next to the SVG, so text never stretches, and every string a
template prints goes through Jinja's autoescaping: nothing here builds markup.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 1000.0
HEIGHT = 100.0
#: At most this many x-axis labels, so they never overlap.
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Column:
    """One point of a chart: its column, value, tooltip and axis label."""

    x: float
    width: float
    center: float
    #: Top of the value in view-box units (HEIGHT = zero), None when there is no value.
    y: float | None
    value: float | None
    title: str
    #: Axis label, empty when this column's label is hidden to avoid overlaps.
    label: str
    #: Every other shown label: hidden on narrow screens.
    minor: bool = False


@dataclass(frozen=True)
class Mark:
    """An annotation over a run of columns: its id, view-box span and tooltip."""

    id: int
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Chart:
    """A line or column chart ready to be printed by the ``analytics/_charts.html`` macros."""

    columns: list[Column]
    #: Tick labels from the top of the chart to the bottom (zero).
    y_labels: list[str]
    #: Grid line heights in view-box units, matching ``y_labels``.
    grid: list[float]
    line: str
    area: str
    previous_line: str
    #: The segment into the bucket still filling up (today, this month, this hour),
    #: drawn dashed: its value is not final. Empty when the chart has no such bucket.
    partial_line: str = ""
    width: float = WIDTH
    height: float = HEIGHT
    #: Annotations over the columns they touch (:func:`annotate`).
    marks: tuple[Mark, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(c.value for c in self.columns)


def nice_scale(maximum: float, *, ticks: int = 4, integer: bool = True) -> list[float]:
    """Tick values from 0 to a round top at or above ``maximum``."""
    if not maximum or maximum <= 0 or not math.isfinite(maximum):
        return (
            [float(i) for i in range(ticks + 1)]
            if integer
            else [i / ticks for i in range(ticks + 1)]
        )
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    count = max(1, math.ceil(maximum / step - 1e-9))
    return [round(i * step, 10) for i in range(count + 1)]


def _y(value: float | None, top: float) -> float | None:
    if value is None:
        return None
    return HEIGHT - (value / top * HEIGHT if top else 0.0)


def _path(points: Sequence[tuple[float, float | None]]) -> str:
    """An SVG path through the points, broken where a value is missing."""
    parts = []
    pen_down = False
    for x, y in points:
        if y is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.2f}")
        pen_down = True
    return " ".join(parts)


def _area(points: Sequence[tuple[float, float | None]]) -> str:
    """Closed shapes under each unbroken run of the line."""
    shapes = []
    run: list[tuple[float, float]] = []
    for x, y in [*points, (0.0, None)]:
        if y is not None:
            run.append((x, y))
            continue
        if run:
            line = " ".join(f"L{px:.1f} {py:.2f}" for px, py in run)
            shapes.append(f"M{run[0][0]:.1f} {HEIGHT} {line} L{run[-1][0]:.1f} {HEIGHT} Z")
        run = []
    return " ".join(shapes)


def build(
    labels: Sequence[str],
    values: Sequence[float | None],
    titles: Sequence[str],
    *,
    previous: Sequence[float | None] | None = None,
    tick_format: Callable[[float], str] = lambda v: f"{v:g}",
    integer: bool = True,
    show_every_label: bool = False,
    partial: int | None = None,
) -> Chart:
    """Lay out one series (and optionally the previous period's) over equal columns.
    ``partial``: the index of a point still filling up; the line into it is
    :attr:`Chart.partial_line` instead of part of :attr:`Chart.line`."""
    n = len(values)
    if not n:
        return Chart([], [], [], "", "", "")
    candidates = [v for v in values if v is not None]
    if previous is not None:
        candidates += [v for v in previous[:n] if v is not None]
    ticks = nice_scale(max(candidates, default=0.0), integer=integer)
    top = ticks[-1]
    width = WIDTH / n
    step = 1 if show_every_label else max(1, math.ceil(n / MAX_X_LABELS))
    columns = []
    for i, (label, value, title) in enumerate(zip(labels, values, titles, strict=True)):
        columns.append(
            Column(
                x=i * width,
                width=width,
                center=(i + 0.5) * width,
                y=_y(value, top),
                value=value,
                title=title,
                label=label if i % step == 0 else "",
                minor=i % (2 * step) != 0,
            )
        )
    points = [(c.center, c.y) for c in columns]
    line, partial_line = _path(points), ""
    if partial is not None and 0 <= partial < n and points[partial][1] is not None:
        # The line up to the point before, then the dashed step into the partial one.
        line = _path(points[:partial])
        partial_line = _path(points[max(0, partial - 1) : partial + 1])
    previous_points = []
    if previous is not None:
        previous_points = [(c.center, _y(v, top)) for c, v in zip(columns, previous, strict=False)]
    return Chart(
        columns=columns,
        y_labels=[tick_format(t) for t in reversed(ticks)],
        grid=[HEIGHT - t / top * HEIGHT for t in ticks],
        line=line,
        area=_area(points),
        previous_line=_path(previous_points),
        partial_line=partial_line,
    )


def annotate(
    chart: Chart,
    spans: Sequence[tuple[dt.date, dt.date]],
    notes: Sequence[tuple[int, dt.date, dt.date, str]],
) -> Chart:
    """``chart`` with a mark per note ``(id, first day, last day, title)`` over the columns
    whose span of days (``spans``, one per column) it touches; notes outside are left out."""
    marks = []
    for ident, first, last, title in notes:
        touched = [
            c
            for c, (start, end) in zip(chart.columns, spans, strict=True)
            if start <= last and end >= first
        ]
        if touched:
            x = touched[0].x
            marks.append(Mark(ident, x, touched[-1].x + touched[-1].width - x, title))
    return dataclasses.replace(chart, marks=tuple(marks))
