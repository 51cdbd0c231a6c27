"""What one dashboard request works with: its query, its :class:`Stats`, the breakdowns
it may ask for, and its page rendered with the template helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import current_app, jsonify, render_template, request

from ...goals import Funnel, Goal
from ...models import EventMixin
from ...reports import (
    BREAKDOWNS,
    BadFilter,
    Breakdown,
    Filter,
    LiveCache,
    RawDataMissing,
    Stats,
    custom_breakdown,
)
from ...state import current_state
from .grants import is_api
from .helpers import Helpers
from .query import BadQuery, ViewQuery, parse_query
from .security import request_scope


def live_cache() -> LiveCache:
    """The app's cache of live days' rows (``ANALYTICS_DASHBOARD_LIVE_TTL`` seconds)."""
    cache: LiveCache | None = current_app.extensions.get("analytics_dashboard_live")
    if cache is None:
        ttl = current_app.config["ANALYTICS_DASHBOARD_LIVE_TTL"]
        cache = current_app.extensions.setdefault(
            "analytics_dashboard_live", LiveCache(float(ttl or 0))
        )
    return cache


def scope_filters() -> tuple[Filter, ...]:
    """The filters of the request's scope (none when it sees everything)."""
    scope = request_scope()
    if scope is None:
        return ()
    try:
        return scope.as_filters(custom_columns(), current_goals())
    except BadFilter as error:
        # The host's or the stored scope names what this app does not have: refuse
        # rather than show more than the scope allows.
        raise RuntimeError(f"The request's scope cannot be applied: {error}") from None


@contextmanager
def open_stats(query: ViewQuery | None = None) -> Iterator[Stats]:
    """The request's queries, on one connection held until the block ends, limited to
    the request's scope and ``query``'s filters (filtered questions read raw events).
    Every question of the dashboard, the API and the widget goes through here, so none
    can leave the scope out."""
    state = current_state()
    filters = query.filters if query is not None else ()
    scope = scope_filters()
    with state.engine().connect() as conn:
        stats = Stats(state, conn, live_cache=live_cache(), filters=filters, scope=scope)
        try:
            yield stats
        finally:
            stats.close()


def custom_columns() -> list[str]:
    """The event model's custom columns: filter dimensions besides the built-in ones."""
    table: sa.Table = current_state().models.Event.__table__
    return [c.name for c in table.c if c.name not in EventMixin.__annotations__]


def current_goals() -> dict[str, Goal]:
    """The app's goals by name: declared with ``analytics.goal``, then ``ANALYTICS_GOALS``."""
    state = current_state()
    return state.hooks.app_goals(state.settings.goals)


def current_funnels() -> dict[str, Funnel]:
    """The app's funnels by name: declared, then ``ANALYTICS_FUNNELS``."""
    state = current_state()
    return state.hooks.app_funnels(state.settings.funnels, current_goals())


def current_query() -> ViewQuery:
    """The request's period, comparison, metric and filters (raises :class:`BadQuery`)."""
    return parse_query(request.args, current_state().today(), custom_columns(), current_goals())


def custom_breakdowns() -> list[Breakdown]:
    """Breakdowns of the host's ``analytics.dimension(name)`` columns, in declaration order."""
    return [custom_breakdown(d.name, d.label) for d in current_state().hooks.dimensions]


def offered_breakdowns() -> dict[str, Breakdown]:
    """Every breakdown the API offers: built-in ones win a name clash."""
    custom = {d.name: d for d in custom_breakdowns()}
    return {**custom, **BREAKDOWNS}


def current_endpoint() -> str:
    """The short endpoint name of this request ("overview", "page_detail"...)."""
    return (request.endpoint or "analytics_dashboard.overview").rsplit(".", 1)[-1]


def base_template() -> dict[str, Any]:
    """Template context of every page: the layout it extends (``ANALYTICS_BASE_TEMPLATE``)."""
    return {"analytics_base_template": current_state().settings.base_template}


def render_page(
    template: str, query: ViewQuery | None, extra: Mapping[str, str] | None = None, **context: Any
) -> str:
    """``template`` with the helpers ``fa``, the query ``q`` and the time zone."""
    state = current_state()
    helpers = Helpers(query, endpoint=current_endpoint(), extra=extra, today=state.today())
    return render_template(
        template, fa=helpers, q=query, timezone=state.settings.timezone.key, **context
    )


def _wants_json() -> bool:
    return request.blueprint == "analytics_dashboard" and is_api()


def bad_query(error: BadQuery | RawDataMissing) -> tuple[Any, int]:
    """400 with the message: JSON for the API, the error page for the HTML pages."""
    if _wants_json():
        return jsonify(error=str(error)), 400
    state = current_state()
    helpers = Helpers(None, endpoint=current_endpoint(), today=state.today())
    page = render_template(
        "analytics/error.html",
        message=str(error),
        fa=helpers,
        q=None,
        timezone=state.settings.timezone.key,
    )
    return page, 400


def _local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(current_state().settings.timezone)


def freshness(stats: Stats) -> dict[str, Any]:
    """Template context saying how fresh the numbers are: last aggregation run, today,
    and when the run today's numbers come from started (None: today is computed live)."""
    return {
        "data_as_of": _local(stats.data_as_of()),
        "today": stats.today,
        "today_as_of": _local(stats.live.today_as_of()),
    }
