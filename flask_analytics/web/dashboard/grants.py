"""Share links and API tokens on the dashboard blueprint.

- A share link serves every GET route of the dashboard under
  ``<dashboard>/shared/<token>/`` without the access callback: the same views, registered
  a second time under the same endpoint names with a ``token`` argument. A
  ``url_value_preprocessor`` takes the token out of the view's arguments and a
  ``url_defaults`` puts it back into every ``url_for`` of the request, so the pages' links,
  forms, scripts and stylesheets stay under the link (werkzeug builds with the rule that
  uses the most arguments first). The link's scope applies; a revoked or expired link,
  or an unknown one, answers 404.
- ``Authorization: Bearer <token>`` opens ``<dashboard>/api/*`` (only) without the access
  callback, limited to the token's scope, rate-limited per token
  (``ANALYTICS_API_RATE_LIMIT``), with CORS for ``ANALYTICS_API_CORS_ORIGINS``.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, current_app, g, jsonify, request

from ...access import SHARE, TOKEN, Grant, find_grant
from ...ingest.ratelimit import CollectLimiter
from ...reports.scope import Scope
from ...state import current_state

#: Prefix of the shared copy of every route.
SHARED: Final = "/shared/<token>"
#: What a CORS preflight may ask for.
_ALLOWED_HEADERS: Final = "Authorization"


def add_shared_rules(bp: Blueprint, rules: list[tuple[str, Any]]) -> None:
    """Every GET route of ``rules`` (and the static files) again under :data:`SHARED`."""
    for rule, view in rules:
        bp.add_url_rule(SHARED + rule, view.__name__, view, methods=["GET"])
    bp.add_url_rule(SHARED + "/static/<path:filename>", "static", bp.send_static_file)
    bp.url_value_preprocessor(_take_token)
    bp.url_defaults(_keep_token)


def _take_token(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and "token" in values:
        g.analytics_share_token = values.pop("token")


def _keep_token(endpoint: str, values: dict[str, Any]) -> None:
    token = g.get("analytics_share_token")
    if token is not None and endpoint.startswith("analytics_dashboard."):
        values.setdefault("token", token)


def is_api() -> bool:
    """Whether this request is one of the JSON/CSV API's (``.../api/...`` routes)."""
    return (request.endpoint or "").rsplit(".", 1)[-1].startswith("api_")


def shared_access() -> bool | None:
    """For a request under a share link: True (allowed, its scope kept on ``g``); 404
    for a dead link. None: not a shared request."""
    token = g.get("analytics_share_token")
    if token is None:
        return None
    grant = find_grant(current_state(), SHARE, token)
    if grant is None or request.method not in ("GET", "HEAD"):
        return False
    _keep_scope(grant)
    g.analytics_read_only = True
    return True


def bearer_access() -> bool | None:
    """For an API request with ``Authorization: Bearer``: True (allowed, scope kept),
    False (unknown or revoked token). None: no bearer token sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not is_api():
        return None
    grant = find_grant(current_state(), TOKEN, token.strip())
    if grant is None:
        return False
    _keep_scope(grant)
    g.analytics_token = grant
    g.analytics_read_only = True
    return True


def _keep_scope(grant: Grant) -> None:
    if grant.scope:
        g.analytics_scope = Scope.from_json(grant.scope)
    else:
        g.pop("analytics_scope", None)


def over_rate_limit(grant: Grant) -> int | None:
    """Seconds to wait when ``grant`` is over ``ANALYTICS_API_RATE_LIMIT``, else None
    (the collect endpoint's limiter, on the same storage, counting per token)."""
    settings = current_state().settings
    if settings.api_rate_limit is None:
        return None
    limiter: CollectLimiter | None = current_app.extensions.get("analytics_api_limiter")
    if limiter is None:
        limiter = current_app.extensions.setdefault(
            "analytics_api_limiter",
            CollectLimiter(
                settings.api_rate_limit,
                settings.rate_limit_storage,
                namespace=f"{settings.queue}:api",
                setting="ANALYTICS_API_RATE_LIMIT",
            ),
        )
    key = f"{settings.queue}:token:{grant.id}"
    return None if limiter.hit(key, 1) else limiter.retry_after(key)


def unauthorized(message: str, status: int = 401) -> Response:
    """A JSON refusal of an API request."""
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="analytics"'
    return response


def cors_preflight() -> Response | None:
    """The answer to a CORS preflight of the API from an allowed origin, else None."""
    if request.method != "OPTIONS" or not is_api() or _allowed_origin() is None:
        return None
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET"
    response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def add_cors_headers(response: Response) -> None:
    """Let an allowed origin read an API answer (``ANALYTICS_API_CORS_ORIGINS``)."""
    if not is_api():
        return
    origin = _allowed_origin()
    response.vary.add("Origin")
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    allowed = current_state().settings.api_cors_origins
    if origin is None or not allowed:
        return None
    if "*" in allowed or origin in allowed:
        return origin
    return None
