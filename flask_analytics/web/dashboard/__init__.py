"""The admin dashboard blueprint: HTML pages, the JSON API and CSV exports.

The blueprint is closed (403) until the host's ``@analytics.dashboard_access`` callback
allows the request, and every response carries strict security headers
(:mod:`.security`). The numbers come from :mod:`flask_analytics.reports`; the modules
here parse the query (:mod:`.query`), pick what a page shows (:mod:`.views`,
:mod:`.api`) and format it (:mod:`.format`, :mod:`.helpers`, :mod:`.series`,
:mod:`.export`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ...config import Settings
from ...reports import RawDataMissing
from .. import STATIC_DIR, TEMPLATES_DIR
from . import api, goals, notes, page, views
from .current import bad_query, base_template
from .export import csv_cell
from .format import change, compact, duration
from .grants import add_shared_rules
from .query import BadQuery, parse_query, preset_range
from .security import CONTENT_SECURITY_POLICY, add_security_headers, require_access

#: What the extension and the tests use.
__all__ = [
    "CONTENT_SECURITY_POLICY",
    "change",
    "compact",
    "csv_cell",
    "duration",
    "make_blueprint",
    "parse_query",
    "preset_range",
]


def make_blueprint(settings: Settings) -> Blueprint:
    """The dashboard at ``settings.dashboard_url`` (closed until ``dashboard_access`` allows)."""
    bp = Blueprint(
        "analytics_dashboard",
        __name__,
        url_prefix=settings.dashboard_url,
        template_folder=TEMPLATES_DIR,
        static_folder=STATIC_DIR,
        static_url_path="/static",
    )
    bp.before_request(require_access)
    bp.after_request(add_security_headers)
    bp.register_error_handler(BadQuery, bad_query)
    bp.register_error_handler(RawDataMissing, bad_query)
    bp.context_processor(base_template)
    # Endpoint names (``analytics_dashboard.<name>``) are what templates pass to url_for.
    routes: list[tuple[str, Any]] = [
        ("/", views.overview),
        ("/pages", views.pages),
        ("/pages/detail", views.page_detail),
        ("/sources", views.sources),
        ("/locations", views.locations),
        ("/devices", views.devices),
        ("/events", views.events),
        ("/engagement", views.engagement),
        ("/goals", goals.goals),
        ("/funnels", goals.funnels),
        ("/realtime", views.realtime),
        ("/api/stats", api.api_stats),
        ("/api/breakdown/<dimension>", api.api_breakdown),
        ("/api/breakdown/prop:<path:key>", api.api_prop_breakdown),
        ("/api/props", api.api_props),
        ("/api/goals", goals.api_goals),
        ("/api/funnel/<name>", goals.api_funnel),
        ("/api/suggest/<dimension>", api.api_suggest),
        ("/api/sessions", api.api_sessions),
        ("/api/devices", api.api_devices),
        ("/api/experience", api.api_experience),
        ("/api/endpoints", api.api_endpoints),
        ("/api/errors", api.api_errors),
        ("/api/realtime", api.api_realtime),
        ("/api/page", page.api_page),
        ("/annotations", notes.annotations_page),
        ("/api/annotations", notes.api_annotations),
    ]
    for rule, view in routes:
        bp.add_url_rule(rule, view.__name__, view, methods=["GET"])
    # Writes: annotations only, behind the access callback and a CSRF token.
    for rule, view, methods in (
        ("/annotations", notes.annotation_create, ["POST"]),
        ("/annotations/<int:ident>", notes.annotation_update, ["POST"]),
        ("/annotations/<int:ident>/delete", notes.annotation_delete, ["POST"]),
        ("/api/annotations", notes.api_annotations, ["POST"]),
        ("/api/annotations/<int:ident>", notes.api_annotation, ["PUT", "DELETE"]),
    ):
        bp.add_url_rule(rule, view.__name__, view, methods=methods)
    # The same pages, read-only, under a share link (see :mod:`.grants`).
    add_shared_rules(bp, routes)
    return bp
