"""The admin dashboard blueprint (placeholder: lands with the dashboard)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app

from .config import Settings


def _closed() -> None:
    state = current_app.extensions["analytics"]
    if state.ext._access is None or not state.ext._access():
        abort(403)


def make_blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint(
        "analytics_dashboard",
        __name__,
        url_prefix=settings.dashboard_url,
        template_folder="templates",
        static_folder="static/analytics",
        static_url_path="/static",
    )
    bp.before_request(_closed)

    @bp.route("/")
    def overview() -> str:
        return "dashboard"

    return bp
