"""CSV files and JSON bodies of the dashboard's API."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any, Final

from flask import Response

from ...reports import Breakdown, DateRange, Filter, Row, Totals
from .query import Window

#: CSV cells starting with these are formulas to a spreadsheet.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
#: Decimals of a rate, share or average in a CSV file (durations are whole, counts exact).
CSV_DECIMALS: Final = 4


def csv_cell(value: Any) -> Any:
    """A cell no spreadsheet runs as a formula (strings only: numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def is_duration(column: str) -> bool:
    """Whether CSV column ``column`` holds a duration: a name with a unit part ``s`` or
    ``ms`` (``avg_visit_duration_s``, ``time_on_page_ms_median``)."""
    parts = column.split("_")
    return "s" in parts or "ms" in parts


def csv_number(column: str, value: Any) -> Any:
    """A number as a CSV file prints it: a fractional duration in whole units (seconds or
    milliseconds), any other fraction (rates, shares, averages) to :data:`CSV_DECIMALS`
    decimals. Whole numbers (the exact counts), text and unknowns are kept as they are;
    the JSON API keeps every value exact."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    if is_duration(column):
        return round(value)
    return round(value, CSV_DECIMALS)


def csv_response(header: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    """A CSV attachment of ``header`` and ``rows`` (numbers rounded by their column's name,
    see :func:`csv_number`; every cell defused)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    names = list(header)
    for row in rows:
        writer.writerow(
            [csv_cell(csv_number(names[i] if i < len(names) else "", v)) for i, v in enumerate(row)]
        )
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def json_number(value: float | None) -> float | None:
    """A rate as JSON can carry it: None for unknown, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return value


def range_json(rng: DateRange, filters: Sequence[Filter]) -> dict[str, Any]:
    """The range and filters an API answer is about."""
    return {
        "start": rng.start.isoformat(),
        "end": rng.end.isoformat(),
        "filters": [f.param() for f in filters],
    }


def totals_json(rng: DateRange, totals: Totals) -> dict[str, Any]:
    """A range's totals and rates as the stats API answers them."""
    return {
        "start": rng.start.isoformat(),
        "end": rng.end.isoformat(),
        "totals": totals.counts(),
        "rates": {k: json_number(v) for k, v in totals.rates().items()},
    }


def row_json(breakdown: Breakdown, row: Row) -> dict[str, Any]:
    """One breakdown row as the breakdown API answers it (keyed by the breakdown's name,
    after its parent column's value when it has one: ``{"browser": "Chrome",
    "browser_version": "131", ...}``)."""
    return {
        **({breakdown.parent: row.parent} if breakdown.parent else {}),
        breakdown.name: row.key,
        **row.counts,
        **{k: json_number(v) for k, v in row.rates.items()},
    }


def page_suffix(window: Window) -> str:
    """What a CSV file name adds for one page of a list ("" for the whole list)."""
    if window.limit is None and not window.offset:
        return ""
    if window.page is not None:
        return f"-page{window.page}"
    return f"-from{window.offset + 1}"
