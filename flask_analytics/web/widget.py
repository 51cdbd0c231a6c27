"""The admin widget: one page's visitors and pageviews of the last 30 days, for CMS screens.

``{{ analytics_widget(path=page.path) }}`` renders ``analytics/_widget.html``: totals and
a column per day (server-side SVG). It is behind the dashboard's access callback: when
``@analytics.dashboard_access`` does not allow the request (or is not set), it renders
nothing, and no query runs. The markup has no inline script or style (its CSS is the
dashboard's ``widget.css``, a same-origin file), so it works under the dashboard's CSP
and any host policy with ``style-src 'self'``. The path is printed through Jinja's
autoescaping. Numbers come from :class:`~flask_analytics.reports.Stats` (daily page
rows, today and days not aggregated yet live), as on the dashboard's page screen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app, render_template, render_template_string
from jinja2 import TemplateNotFound
from markupsafe import Markup

from ..reports import DateRange
from ..state import current_state
from . import TEMPLATES_DIR
from .dashboard.current import open_stats
from .dashboard.query import BadQuery, parse_path
from .dashboard.security import admit

#: The widget's template (a host may override it in its own ``templates/``).
TEMPLATE = "analytics/_widget.html"
#: Days the widget shows, today included.
DAYS = 30
#: View box of the columns (stretched to the widget's width by its CSS).
WIDTH, HEIGHT = 300, 40


@dataclass(frozen=True)
class Day:
    """One column of the widget."""

    day: dt.date
    visitors: int
    pageviews: int
    #: The column in view-box units (``y`` from the top; zero height for no visitors).
    x: float
    y: float
    height: float


def analytics_widget(*, path: str) -> Markup:
    """Visitors and pageviews of ``path`` over the last 30 days, or nothing for a viewer
    the dashboard's access callback does not allow. ``path`` is a page path as collected
    (starts with ``/``); anything else raises ``ValueError``."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a string, not {path!r}.")
    try:
        path = parse_path({"path": path})
    except BadQuery as exc:
        raise ValueError(str(exc)) from None
    state = current_state()
    if not admit():
        return Markup("")
    today = state.today()
    rng = DateRange(today - dt.timedelta(days=DAYS - 1), today)
    with open_stats() as stats:
        daily = stats.page_daily(rng, path)
    top = max((totals.visitors for totals in daily.values()), default=0)
    width = WIDTH / DAYS
    days = []
    for index, (day, totals) in enumerate(sorted(daily.items())):
        height = HEIGHT * totals.visitors / top if top else 0.0
        days.append(
            Day(
                day=day,
                visitors=totals.visitors,
                pageviews=totals.pageviews,
                x=index * width,
                y=HEIGHT - height,
                height=height,
            )
        )
    context = {
        "path": path,
        "days": days,
        "visitors": sum(d.visitors for d in days),
        "pageviews": sum(d.pageviews for d in days),
        "start": rng.start,
        "end": rng.end,
        "bar_width": width * 0.8,
        "width": WIDTH,
        "height": HEIGHT,
        # Its stylesheet and the details link are the dashboard's, when it is mounted.
        "dashboard": "analytics_dashboard" in current_app.blueprints,
    }
    try:
        return Markup(render_template(TEMPLATE, **context))
    except TemplateNotFound:
        # The package's templates are found through the dashboard's blueprint; without
        # it, the file itself (Flask autoescapes template strings too).
        source = (TEMPLATES_DIR / TEMPLATE).read_text("utf-8")
        return Markup(render_template_string(source, **context))
