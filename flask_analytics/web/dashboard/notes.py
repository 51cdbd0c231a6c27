"""Annotations on the dashboard: marks on every time chart, the Annotations page (a form
per note), and ``/api/annotations`` (JSON).

Writes change state, so they take the access callback (a viewer whose callback answers
True: not a scope, a share link or an API token, which only read) and a CSRF token: a
random value kept in the host's Flask session, sent back signed (``itsdangerous``, keyed
on the app's ``SECRET_KEY``) in the form's ``csrf_token`` field or the API's
``X-CSRF-Token`` header. A cross-site page can make a browser send the session cookie,
but cannot read the token. Scoped viewers see no annotations: a note is the whole site's.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any, Final

from flask import Response, abort, current_app, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ...access import (
    Annotation,
    BadAnnotation,
    create_annotation,
    delete_annotation,
    list_annotations,
    update_annotation,
)
from ...reports import DateRange, buckets
from ...state import current_state
from . import charts
from .current import current_query, render_page
from .export import csv_response
from .query import BadQuery, parse_format
from .security import read_only, request_scope

#: Where the session keeps the value the CSRF token signs, and how long a token lives.
_SESSION_KEY: Final = "_analytics_csrf"
_TOKEN_AGE: Final = 24 * 3600
_SALT: Final = "flask-analytics-csrf"


# -- CSRF -----------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    if not current_app.secret_key:
        raise BadQuery("Annotations need the app's SECRET_KEY (for their CSRF protection).")
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def csrf_token() -> str:
    """This session's CSRF token (signed; a new random value when the session has none)."""
    value = session.get(_SESSION_KEY)
    if not isinstance(value, str):
        value = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return str(_serializer().dumps(value))


def _check_csrf(sent: str | None) -> None:
    expected = session.get(_SESSION_KEY)
    try:
        value = _serializer().loads(sent or "", max_age=_TOKEN_AGE)
    except BadSignature:
        value = None
    if not isinstance(expected, str) or not secrets.compare_digest(str(value), expected):
        abort(400, "The form has expired or was not sent by the dashboard: reload and retry.")


def _may_write() -> None:
    if not writable():
        abort(403)


# -- charts ---------------------------------------------------------------------------------


def visible(start: dt.date, end: dt.date) -> list[Annotation]:
    """The annotations this request may see from ``start`` to ``end`` (none when scoped)."""
    if request_scope() is not None:
        return []
    return list_annotations(current_state(), start, end)


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def title(note: Annotation) -> str:
    """ "3 Nov 2026 to 5 Nov 2026: text" (one date for a one-day note)."""
    span = _day(note.date)
    if note.end_date is not None:
        span += f" \N{EN DASH} {_day(note.end_date)}"
    return f"{span}: {note.text}"


def annotated(chart: charts.Chart, rng: DateRange, interval: str) -> charts.Chart:
    """``chart`` (one column per hour of one day, per day or per month of ``rng``) with
    the annotations over the columns they touch."""
    if not chart.columns:
        return chart
    notes = visible(rng.start, rng.end)
    if not notes:
        return chart
    spans: Sequence[tuple[dt.date, dt.date]]
    if interval == "hour":
        spans = [(rng.start, rng.end)] * len(chart.columns)
    else:
        spans = [(b.start, b.end) for b in buckets({}, rng, interval)]
    return charts.annotate(chart, spans, [(n.id, n.date, n.last, title(n)) for n in notes])


# -- the page and its forms -----------------------------------------------------------------


def writable() -> bool:
    """Whether this request may change annotations (see the module's docstring)."""
    return not read_only() and request_scope() is None


def annotations_page() -> str:
    """The period's annotations; for a viewer who may write, each with its edit and
    delete forms, and a form for a new one."""
    query = current_query()
    # Without SECRET_KEY no CSRF token can be signed: the page only lists, and says why.
    can_write = writable() and bool(current_app.secret_key)
    return render_page(
        "analytics/annotations.html",
        query,
        notes=visible(query.range.start, query.range.end),
        writable=can_write,
        needs_secret_key=writable() and not current_app.secret_key,
        csrf_token=csrf_token() if can_write else None,
        today=current_state().today(),
    )


def _back() -> ResponseReturnValue:
    return redirect(url_for("analytics_dashboard.annotations_page"), 303)


def _form_write(ident: int | None = None, *, delete: bool = False) -> ResponseReturnValue:
    _may_write()
    _check_csrf(request.form.get("csrf_token"))
    state = current_state()
    if delete:
        assert ident is not None
        if not delete_annotation(state, ident):
            abort(404)
        return _back()
    values = (request.form.get("date"), request.form.get("end_date"), request.form.get("text"))
    try:
        if ident is None:
            create_annotation(state, *values)
        elif update_annotation(state, ident, *values) is None:
            abort(404)
    except BadAnnotation as error:
        raise BadQuery(str(error)) from None
    return _back()


def annotation_create() -> ResponseReturnValue:
    """The page's "Add" form."""
    return _form_write()


def annotation_update(ident: int) -> ResponseReturnValue:
    """One annotation's "Save" form."""
    return _form_write(ident)


def annotation_delete(ident: int) -> ResponseReturnValue:
    """One annotation's "Delete" form."""
    return _form_write(ident, delete=True)


# -- the API --------------------------------------------------------------------------------


def api_annotations() -> Response:
    """GET: the annotations touching the period (``period`` or ``start`` and ``end``, as
    everywhere; ``format=csv`` too); POST (JSON ``{"date", "end_date", "text"}``,
    ``X-CSRF-Token``): a new one, 201."""
    if request.method == "GET":
        rng = current_query().range
        notes = visible(rng.start, rng.end)
        if parse_format(request.args) == "csv":
            rows = [[n.id, n.date.isoformat(), n.last.isoformat(), n.text] for n in notes]
            name = f"annotations-{rng.start}-{rng.end}.csv"
            return csv_response(["id", "date", "end_date", "text"], rows, name)
        return jsonify(
            start=rng.start.isoformat(),
            end=rng.end.isoformat(),
            annotations=[n.as_json() for n in notes],
        )
    _may_write()
    _check_csrf(request.headers.get("X-CSRF-Token"))
    try:
        note = create_annotation(current_state(), *_json_values())
    except BadAnnotation as error:
        raise BadQuery(str(error)) from None
    response = jsonify(note.as_json())
    response.status_code = 201
    return response


def api_annotation(ident: int) -> Response:
    """PUT (JSON, ``X-CSRF-Token``): change annotation ``ident``; DELETE: remove it."""
    _may_write()
    _check_csrf(request.headers.get("X-CSRF-Token"))
    state = current_state()
    if request.method == "DELETE":
        if not delete_annotation(state, ident):
            abort(404)
        return Response(status=204)
    try:
        note = update_annotation(state, ident, *_json_values())
    except BadAnnotation as error:
        raise BadQuery(str(error)) from None
    if note is None:
        abort(404)
    return jsonify(note.as_json())


def _json_values() -> tuple[Any, Any, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadQuery('Send a JSON object: {"date": "YYYY-MM-DD", "end_date": ..., "text": ...}.')
    return body.get("date"), body.get("end_date"), body.get("text")
