"""The dashboard's gate and headers: closed until the host allows, strict headers always.

Every URL of the blueprint (pages, API, CSV, its static files) answers 403 until the
host's ``@analytics.dashboard_access`` callback allows the request (or a live share link
or, on the API, a bearer token does: :mod:`.grants`), and every response
carries a strict security-header set (a CSP without inline scripts or styles,
``no-referrer``, ``nosniff``, same-origin framing only).

The callback may return a :class:`~flask_analytics.reports.scope.Scope` instead of
True: the request is then allowed, and every number it reads is limited to the scope
(:func:`admit` keeps it on ``flask.g``, :func:`.current.open_stats` applies it). The
only writes are annotations (:mod:`.notes`, with a CSRF token).
"""

from __future__ import annotations

from typing import Final

from flask import Response, abort, current_app, g, request

from ...reports.scope import Scope
from ...state import current_state
from . import grants

#: Security headers of every dashboard response (the CSP allows no inline script/style).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)


def admit() -> bool:
    """Whether the host's ``dashboard_access`` callback allows this request; a
    :class:`Scope` it returns allows it, limited to that scope (see :func:`request_scope`)."""
    access = current_state().hooks.access
    allowed = access() if access is not None else None
    if isinstance(allowed, Scope):
        g.analytics_scope = allowed
        return True
    g.pop("analytics_scope", None)
    return bool(allowed)


def request_scope() -> Scope | None:
    """The scope this request's numbers are limited to (None: everything)."""
    scope: Scope | None = g.get("analytics_scope")
    return scope


def require_access() -> Response | None:
    """Answer 403 unless the host's ``dashboard_access`` callback allows this request, a
    live share link serves it (404 for a dead one) or, on the API, a live bearer token
    does (401 for an unknown or revoked one, 429 over ``ANALYTICS_API_RATE_LIMIT``)."""
    preflight = grants.cors_preflight()
    if preflight is not None:
        return preflight
    shared = grants.shared_access()
    if shared is not None:
        if not shared:
            if grants.is_api():
                return grants.unauthorized("Unknown, expired or revoked share link.", 404)
            abort(404)
        return None
    bearer = grants.bearer_access()
    if bearer is not None:
        if not bearer:
            return grants.unauthorized("Unknown or revoked API token.")
        wait = grants.over_rate_limit(g.analytics_token)
        if wait is not None:
            refused = grants.unauthorized("This API token is over its rate limit.", 429)
            refused.headers["Retry-After"] = str(wait)
            return refused
        return None
    if not admit():
        abort(403)
    return None


def read_only() -> bool:
    """Whether this request may only read (a share link or an API token serves it)."""
    return bool(g.get("analytics_read_only"))


def add_security_headers(response: Response) -> Response:
    """Put the dashboard's security headers on ``response`` (the host's own ones win)."""
    headers = response.headers
    # None (the default) is the built-in policy; an empty value sends none.
    policy = current_app.config["ANALYTICS_DASHBOARD_CSP"]
    if policy is None:
        policy = CONTENT_SECURITY_POLICY
    if policy:
        headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    grants.add_cors_headers(response)
    if request.endpoint != "analytics_dashboard.static":
        # Statistics are private: keep them out of shared caches and the back/forward cache.
        headers["Cache-Control"] = "no-store"
    return response
