"""The dashboard's charts: the numbers each one shows, their labels and tooltips.

:mod:`.charts` lays a series out as SVG geometry; this module picks the series (daily,
monthly or hourly totals, a page's days, realtime minutes, session histograms) and
words every label and tooltip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from ...core.clock import to_local
from ...reports import DateRange, Hour, Row, Stats, Totals, buckets
from ...reports.compare import Compared
from . import charts
from .format import compact, format_metric, grouped, percent
from .helpers import Helpers
from .query import METRICS, ViewQuery


def _tick_format(metric: str) -> Callable[[float], str]:
    return lambda value: format_metric(metric, value)


def day_label(day: dt.date, interval: str) -> str:
    """The x-axis label of a day ("3 Jan") or a month ("Jan", "Jan 2026" in January)."""
    if interval == "month":
        return day.strftime("%b %Y") if day.month == 1 else day.strftime("%b")
    return f"{day.day} {day.strftime('%b')}"


def bucket_title(bucket_start: dt.date, bucket_end: dt.date, interval: str) -> str:
    """A bucket as its tooltip names it: "Mon 3 Jan 2026" or "Jan 2026 (1-31)"."""
    if interval == "month":
        return f"{bucket_start.strftime('%b %Y')} ({bucket_start.day}\N{EN DASH}{bucket_end.day})"
    return f"{bucket_start.strftime('%a')} {bucket_start.day} {bucket_start.strftime('%b %Y')}"


def comparison_label(compare: Compared | None, tz: dt.tzinfo) -> str | None:
    """The comparison period as the legend names it: its dates, and the local time its
    last day stops at when compared until now ("1 - 7 Dec 2026, until 14:30")."""
    if compare is None:
        return None
    text = Helpers.range_text(compare.range)
    if compare.until is not None:
        text += f", until {to_local(compare.until, tz):%H:%M}"
    return text


def partial_index(starts: Sequence[dt.date], ends: Sequence[dt.date], today: dt.date) -> int | None:
    """The bucket still filling up (holding today), if the chart shows one."""
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if start <= today <= end:
            return i
    return None


def previous_values(
    before: Sequence[tuple[dt.date, float | None]], compare: Compared | None
) -> list[float | None] | None:
    """The comparison's values (bucket end, value), None before its first day with data
    (no flat zero line for a period without data); None when it has no data at all."""
    if compare is None or not compare.has_data:
        return None
    first = compare.first_day
    return [None if first is None or end < first else v for end, v in before]


def interval_of(rng: DateRange) -> str:
    """Chart granularity: hours for one day, days up to 92 days, months beyond."""
    if rng.days == 1:
        return "hour"
    return "day" if rng.days <= 92 else "month"


def _hourly_chart(
    stats: Stats,
    query: ViewQuery,
    previous_daily: Mapping[dt.date, Totals] | None,
    totals: Totals,
    compare: Compared | None,
) -> charts.Chart | None:
    """One day's chart per hour, or None when the raw events no longer match the day."""
    metric, rng = query.metric, query.range
    label = METRICS[metric].lower()
    hours = stats.hourly(rng.start)
    # Hours come from raw events: use them only while they match the day's totals.
    if not hours or sum(h.pageviews for h in hours) != totals.pageviews:
        return None
    values: list[float | None] = [float(getattr(h, metric)) for h in hours]
    previous_values: list[float | None] | None = None
    comparison = query.comparison
    if comparison is not None and previous_daily is not None:
        before = stats.hourly(comparison.start)
        if sum(h.pageviews for h in before) == previous_daily[comparison.start].pageviews:
            previous_values = previous_hours(before, metric, compare)
    titles = [
        f"{h.start:%H:%M}: {grouped(getattr(h, metric))} {label}"
        + (
            f" (before: {grouped(previous_values[i])})"
            if previous_values is not None and i < len(previous_values)
            else ""
        )
        for i, h in enumerate(hours)
    ]
    now = stats.now.replace(tzinfo=dt.timezone.utc)
    values = [None if h.start > now else v for h, v in zip(hours, values, strict=True)]
    current = [i for i, h in enumerate(hours) if h.start <= now]
    partial = current[-1] if current and rng.start == stats.today else None
    return charts.build(
        [f"{h.start:%H:%M}" for h in hours],
        values,
        titles,
        previous=previous_values,
        tick_format=_tick_format(metric),
        partial=partial,
    )


def previous_hours(
    before: Sequence[Hour], metric: str, compare: Compared | None
) -> list[float | None] | None:
    """The comparison day's hourly values (None without data then)."""
    return previous_values([(h.start.date(), float(getattr(h, metric))) for h in before], compare)


def series_chart(
    stats: Stats,
    query: ViewQuery,
    daily: Mapping[dt.date, Totals],
    previous_daily: Mapping[dt.date, Totals] | None,
    totals: Totals,
    compare: Compared | None = None,
) -> tuple[charts.Chart, str]:
    """The overview's time series of ``query.metric`` and its interval; the bucket
    holding today is drawn as partial, the comparison only where it has data."""
    metric, rng = query.metric, query.range
    label = METRICS[metric].lower()
    interval = interval_of(rng)
    if interval == "hour":
        if metric in ("visitors", "pageviews"):
            hourly = _hourly_chart(stats, query, previous_daily, totals, compare)
            if hourly is not None:
                return hourly, "hour"
        interval = "day"
    current = buckets(daily, rng, interval)
    before_buckets = (
        buckets(previous_daily, query.comparison, interval)
        if previous_daily is not None and query.comparison is not None
        else None
    )
    values = [None if b.start > stats.today else b.totals.metric(metric) for b in current]
    before_values = (
        previous_values([(b.end, b.totals.metric(metric)) for b in before_buckets], compare)
        if before_buckets is not None
        else None
    )
    titles = []
    for i, b in enumerate(current):
        title = f"{bucket_title(b.start, b.end, interval)}: {format_metric(metric, values[i])}"
        if metric in ("visitors", "sessions", "pageviews"):
            title += f" {label}"
        if b.start <= stats.today <= b.end:
            title += " (so far)"
        if before_values is not None and before_buckets is not None and i < len(before_buckets):
            p = before_buckets[i]
            title += (
                f" · {bucket_title(p.start, p.end, interval)}: "
                f"{format_metric(metric, before_values[i])}"
            )
        titles.append(title)
    chart = charts.build(
        [day_label(b.start, interval) for b in current],
        values,
        titles,
        previous=before_values,
        tick_format=_tick_format(metric),
        integer=metric in ("visitors", "sessions", "pageviews"),
        partial=partial_index([b.start for b in current], [b.end for b in current], stats.today),
    )
    return chart, interval


def page_chart(
    daily: Mapping[dt.date, Totals],
    rng: DateRange,
    metric: str,
    today: dt.date,
    *,
    previous_daily: Mapping[dt.date, Totals] | None = None,
    compare: Compared | None = None,
) -> charts.Chart:
    """One page's visitors or pageviews per day (per month beyond 92 days), with the
    comparison's line (whole days) where it has data; the bucket holding today partial."""
    interval = "day" if rng.days <= 92 else "month"
    points = buckets(daily, rng, interval)
    values: list[float | None] = [
        None if b.start > today else float(getattr(b.totals, metric)) for b in points
    ]
    before: list[float | None] | None = None
    if previous_daily is not None and compare is not None:
        before = previous_values(
            [
                (b.end, float(getattr(b.totals, metric)))
                for b in buckets(previous_daily, compare.range, interval)
            ],
            compare,
        )
    titles = []
    for i, (b, v) in enumerate(zip(points, values, strict=True)):
        title = f"{bucket_title(b.start, b.end, interval)}: {compact(v)} {metric}"
        if b.start <= today <= b.end:
            title += " (so far)"
        if before is not None and i < len(before):
            title += f" · before: {compact(before[i])}"
        titles.append(title)
    return charts.build(
        [day_label(b.start, interval) for b in points],
        values,
        titles,
        previous=before,
        partial=partial_index([b.start for b in points], [b.end for b in points], today),
    )


def realtime_chart(minutes: Sequence[Hour]) -> charts.Chart:
    """Pageviews per minute of the last 30 minutes, labelled every five minutes."""
    return charts.build(
        [f"{m.start:%H:%M}" if i % 5 == 0 else "" for i, m in enumerate(minutes)],
        [float(m.pageviews) for m in minutes],
        [f"{m.start:%H:%M}: {m.pageviews} pageviews, {m.visitors} visitors" for m in minutes],
        show_every_label=True,
    )


def histogram_chart(rows: Sequence[Row], labels: Sequence[str], unit: str) -> charts.Chart:
    """Sessions per bucket (visit duration or pages per visit) as columns."""
    counts = [float(r["sessions"]) for r in rows]
    total = sum(counts)
    titles = [
        f"{label} {unit}: {grouped(v)} visits ({percent(v / total if total else None)})"
        for label, v in zip(labels, counts, strict=True)
    ]
    return charts.build(labels, list(counts), titles, show_every_label=True)


def duration_labels(bounds: Sequence[int]) -> list[str]:
    """Labels 0s-10s, 10s-30s, ..., 30m+ from sorted bucket lower bounds (seconds)."""

    def short(seconds: int) -> str:
        if seconds and seconds % 3600 == 0:
            return f"{seconds // 3600}h"
        if seconds and seconds % 60 == 0:
            return f"{seconds // 60}m"
        return f"{seconds}s"

    labels = []
    for i, low in enumerate(bounds):
        if i + 1 < len(bounds):
            labels.append(f"{short(low)}\N{EN DASH}{short(bounds[i + 1])}")
        else:
            labels.append(f"{short(low)}+")
    return labels


def pages_labels(bounds: Sequence[int]) -> list[str]:
    """Labels 0, 1, ..., 5-9, 20+ from sorted bucket lower bounds (pages per visit)."""
    labels = []
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else None
        if high is None:
            labels.append(f"{low}+")
        elif high == low:
            labels.append(str(low))
        else:
            labels.append(f"{low}\N{EN DASH}{high}")
    return labels


def bucket_bounds(declared: Sequence[int], rows: Sequence[Row]) -> list[int]:
    """Every bucket lower bound: the aggregation's ``declared`` ones and any the data has."""
    return sorted(set(declared) | {int(r.key) for r in rows})


def fill_histogram(rows: Sequence[Row], bounds: Sequence[int]) -> list[Row]:
    """One row per bound, empty buckets included (zero sessions)."""
    by_key = {int(r.key): r for r in rows}
    empty = {"sessions": 0, "total_duration_s": 0, "pageviews": 0}
    return [by_key.get(b, Row(b, dict(empty), {"views_per_session": None})) for b in bounds]
