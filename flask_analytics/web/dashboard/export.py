"""CSV files and JSON bodies of the dashboard's API."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any, Final

from flask import Response

from ...reports import Breakdown, DateRange, Row, Totals
from .query import Window

#: CSV cells starting with these are formulas to a spreadsheet.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell no spreadsheet runs as a formula (strings only: numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_response(header: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    """A CSV attachment of ``header`` and ``rows`` (every cell defused)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def json_number(value: float | None) -> float | None:
    """A rate as JSON can carry it: None for unknown, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return value


def totals_json(rng: DateRange, totals: Totals) -> dict[str, Any]:
    """A range's totals and rates as the stats API answers them."""
    return {
        "start": rng.start.isoformat(),
        "end": rng.end.isoformat(),
        "totals": totals.counts(),
        "rates": {k: json_number(v) for k, v in totals.rates().items()},
    }


def row_json(breakdown: Breakdown, row: Row) -> dict[str, Any]:
    """One breakdown row as the breakdown API answers it (keyed by the breakdown's name)."""
    return {
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
