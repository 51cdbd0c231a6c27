"""The page-experience report as the dashboard shows it: its panel on the Engagement
page (formatted values, the good / needs-improvement / poor bars) and its JSON and CSV
shapes (``/api/experience``). The numbers come from :mod:`flask_analytics.reports.experience`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ...reports import DateRange, RawDataMissing, Stats
from ...reports.experience import (
    RATINGS,
    SCROLL,
    TIME,
    VITALS,
    Experience,
    PageExperience,
    Summary,
    Vital,
    page_experience,
)
from .export import json_number
from .format import duration, percent

#: Vital labels, in display order.
VITAL_LABELS: Final = {
    "lcp": "LCP",
    "inp": "INP",
    "cls": "CLS",
    "ttfb": "TTFB",
}
#: Rating labels.
RATING_LABELS: Final = {
    "good": "Good",
    "needs_improvement": "Needs improvement",
    "poor": "Poor",
}
#: Pages the Engagement page's panel lists.
PANEL_PAGES: Final = 10


def milliseconds(value: float | None) -> str:
    """180 -> "180 ms", 2450 -> "2.45 s", 12300 -> "12.3 s"."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def layout_shift(value: float | None) -> str:
    """CLS with three decimals, two when the third is 0: 0.1 -> "0.10", 0.105 -> "0.105"."""
    if value is None:
        return "—"
    text = f"{value:.3f}"
    return text[:-1] if text.endswith("0") else text


def vital_value(name: str, value: float | None) -> str:
    return layout_shift(value) if name == "cls" else milliseconds(value)


@dataclass(frozen=True)
class Segment:
    """One rating's part of a vital's bar (x and width in a 0-100 box)."""

    rating: str
    x: float
    width: float


@dataclass(frozen=True)
class VitalCell:
    """One vital of one page, ready to print."""

    name: str
    p75: float | None
    text: str
    rating: str | None
    samples: int
    segments: Sequence[Segment]
    #: "Good 62% · Needs improvement 25% · Poor 13% of 120 loads" ("" without samples).
    summary: str
    #: "62% · 25% · 13%" ("" without samples).
    shares: str


@dataclass(frozen=True)
class PageCells:
    """One row of the panel."""

    path: str | None
    visitors: int
    scroll_samples: int
    scroll_median: str
    scroll_average: str
    time_samples: int
    time_median: str
    time_average: str
    vitals: Sequence[VitalCell]


@dataclass(frozen=True)
class Panel:
    """The panel: the site's row, the top pages, how many pages there are, or why not."""

    site: PageCells | None
    rows: Sequence[PageCells]
    total: int
    refused: str | None = None


def vital_cell(name: str, vital: Vital) -> VitalCell:
    segments: list[Segment] = []
    x = 0.0
    parts = []
    for rating in RATINGS:
        share = vital.share(rating) or 0.0
        if share:
            segments.append(Segment(rating, round(x, 2), round(share * 100, 2)))
        x += share * 100
        parts.append((rating, share))
    summary = shares = ""
    if vital.samples:
        summary = " · ".join(f"{RATING_LABELS[r]} {percent(s)}" for r, s in parts)
        summary += f" of {vital.samples:,} load{'s' if vital.samples != 1 else ''}"
        shares = " · ".join(percent(s) for _, s in parts)
    return VitalCell(
        name,
        vital.p75,
        vital_value(name, vital.p75),
        vital.rating(name),
        vital.samples,
        segments,
        summary,
        shares,
    )


def page_cells(page: PageExperience) -> PageCells:
    time, scroll = page.time_on_page_ms, page.scroll_depth
    return PageCells(
        path=page.path,
        visitors=page.visitors,
        scroll_samples=scroll.samples,
        scroll_median="—" if scroll.median is None else f"{scroll.median}%",
        scroll_average="—" if scroll.average is None else f"{scroll.average:.0f}%",
        time_samples=time.samples,
        time_median=duration(None if time.median is None else time.median / 1000),
        time_average=duration(None if time.average is None else time.average / 1000),
        vitals=[vital_cell(name, page.vitals[name]) for name in VITALS],
    )


def panel(stats: Stats, rng: DateRange) -> Panel:
    """The Engagement page's panel; a range it cannot answer (a filtered one reaching
    purged raw events) gets the reason instead (the page's other numbers come from the
    daily tables)."""
    try:
        found = page_experience(stats, rng, limit=PANEL_PAGES)
    except RawDataMissing as error:
        return Panel(None, [], 0, str(error))
    return Panel(page_cells(found.site), [page_cells(r) for r in found.rows], found.total)


# -- JSON and CSV ----------------------------------------------------------------------------


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "samples": summary.samples,
        "median": summary.median,
        "average": json_number(summary.average),
    }


def _vital_json(name: str, vital: Vital) -> dict[str, Any]:
    return {
        "samples": vital.samples,
        "p75": json_number(vital.p75),
        "rating": vital.rating(name),
        **{rating: getattr(vital, rating) for rating in RATINGS},
        **{f"{rating}_share": json_number(vital.share(rating)) for rating in RATINGS},
    }


def page_json(page: PageExperience) -> dict[str, Any]:
    """One row of ``/api/experience`` (``path`` None: the whole site)."""
    return {
        "path": page.path,
        "visitors": page.visitors,
        TIME: _summary_json(page.time_on_page_ms),
        SCROLL: _summary_json(page.scroll_depth),
        "vitals": {name: _vital_json(name, page.vitals[name]) for name in VITALS},
    }


def csv_header() -> list[str]:
    header = ["scope", "path", "visitors"]
    for metric in (TIME, SCROLL):
        header += [f"{metric}_samples", f"{metric}_median", f"{metric}_average"]
    for name in VITALS:
        header += [f"{name}_samples", f"{name}_p75", f"{name}_rating"]
        header += [f"{name}_{rating}_share" for rating in RATINGS]
    return header


def csv_rows(found: Experience) -> list[list[Any]]:
    """The site's row (scope ``site``, no path), then each page's (scope ``page``)."""
    rows = []
    for scope, page in (("site", found.site), *(("page", r) for r in found.rows)):
        row: list[Any] = [scope, page.path, page.visitors]
        for summary in (page.time_on_page_ms, page.scroll_depth):
            row += [summary.samples, summary.median, json_number(summary.average)]
        for name in VITALS:
            vital = page.vitals[name]
            row += [vital.samples, json_number(vital.p75), vital.rating(name)]
            row += [json_number(vital.share(rating)) for rating in RATINGS]
        rows.append(row)
    return rows
