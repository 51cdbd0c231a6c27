"""The public blueprint: the collect endpoint and the tracker script.

Every answer is JSON: 202 with what became of each event (accepted, dropped on purpose
with the ``X-Analytics-Dropped`` header naming why, rejected as invalid one by one, props
left out with a warning), 400 when nothing in the body is usable (nothing is stored),
405, 413 over ``ANALYTICS_MAX_BODY_BYTES``, 415 for a content type other than JSON/text,
and 503 (retryable) while the database cannot be reached.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request

from ..config import Settings
from ..errors import InvalidEvent
from ..ingest import pipeline, privacy
from ..ingest.hosts import hostname_of_authority
from ..ingest.payload import Batch, decode_body, parse_batch
from ..ingest.ratelimit import CollectLimiter, RateCharge, RateLimited, RedisError
from ..state import current_state
from .tracker import script_view

#: Content types the tracker sends: JSON, or text/plain from ``navigator.sendBeacon``.
ACCEPTED_TYPES = frozenset({"application/json", "text/plain", ""})


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _cors(response: Response, settings: Settings) -> Response:
    allowed = settings.cors_origins
    if not allowed:
        return response
    origin = request.headers.get("Origin")
    if origin:
        if "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
    return response


def request_info(settings: Settings) -> pipeline.RequestInfo:
    """What the pipeline needs to know about the sender of the current request."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    country_header = req.headers.get(settings.country_header) if settings.country_header else None
    forwarded = environ.get("HTTP_X_FORWARDED_FOR") if settings.trusted_proxies else None
    return pipeline.RequestInfo(
        ip=privacy.client_ip(req.remote_addr, forwarded, settings.trusted_proxies),
        user_agent=environ.get("HTTP_USER_AGENT", ""),
        dnt=environ.get("HTTP_DNT") == "1" or environ.get("HTTP_SEC_GPC") == "1",
        country_header=country_header,
        accept_language=environ.get("HTTP_ACCEPT_LANGUAGE"),
        request_host=hostname_of_authority(req.host),
        from_browser=True,
        request=req,
    )


def _rate_limited(
    limiter: CollectLimiter, info: pipeline.RequestInfo, events: int, in_sink: bool
) -> Response | RateCharge | None:
    """A 429 answer when this network (anonymized IP prefix) went over the rate limit;
    with ``in_sink`` (the buffer's Redis holds the counters) the count for the sink to
    make in the same round trip as its append instead."""
    anon_ip = info.memo["anon_ip"] = privacy.anonymize_ip(privacy.parse_ip(info.ip))
    key = limiter.network_key(anon_ip)
    if in_sink:
        return limiter.charge(key, events)
    try:
        if limiter.hit(key, events):
            return None
    except (OSError, RedisError):
        # Counting is best effort: an unreachable counter store must not stop collection.
        current_app.logger.warning("analytics: rate limit storage unavailable", exc_info=True)
        return None
    return _too_many(limiter, key)


def _too_many(limiter: CollectLimiter, key: str) -> Response:
    try:
        retry_after = limiter.retry_after(key)
    except (OSError, RedisError):
        retry_after = 1
    response = _error(429, f"rate limit of {limiter.describe()} exceeded, retry later")
    response.headers["Retry-After"] = str(retry_after)
    return response


def collect() -> Response:
    """``POST`` one event object or an array of them."""
    state = current_state()
    settings = state.settings
    if request.method == "OPTIONS":
        response = Response(status=204)
        if settings.cors_origins:
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "86400"
        return _cors(response, settings)
    if request.method != "POST":
        response = _error(405, "use POST with a JSON body")
        response.headers["Allow"] = "POST, OPTIONS"
        return response
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _cors(_error(413, f"body is larger than {limit} bytes"), settings)
    if request.mimetype not in ACCEPTED_TYPES:
        return _cors(_error(415, "send application/json or text/plain"), settings)
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        return _cors(_error(413, f"body is larger than {limit} bytes"), settings)
    try:
        payload = decode_body(raw, settings.max_batch)
    except InvalidEvent as exc:
        return _cors(_error(400, str(exc)), settings)
    batch = parse_batch(payload, state.limits, state.clock.utcnow())
    events = batch.events
    if not events:
        return _cors(_nothing_usable(batch, len(payload)), settings)
    info = request_info(settings)
    charge = None
    if state.limiter is not None:
        limited = _rate_limited(state.limiter, info, len(events), state.limit_in_sink)
        if isinstance(limited, Response):
            return _cors(limited, settings)
        charge = limited
    try:
        result = pipeline.process(state, events, info, charge)
    except RateLimited as exc:
        return _cors(_too_many(exc.charge.limiter, exc.charge.key), settings)
    except sa.exc.OperationalError:
        # The database is down or locked: retryable, and the tracker retries 503s with the
        # same event ids, so nothing is lost or counted twice once it is back.
        current_app.logger.warning("analytics: storage unavailable", exc_info=True)
        response = _error(503, "storage unavailable, retry later")
        response.headers["Retry-After"] = "5"
        return _cors(response, settings)
    headers = {"Cache-Control": "no-store"}
    if result.dropped:
        headers["X-Analytics-Dropped"] = ",".join(sorted(result.dropped))
    accepted = len(result.stored)
    body = {
        "accepted": accepted,
        "stored": accepted,  # the v1 name of "accepted", kept for existing clients
        "dropped": result.dropped,
        "rejected": batch.rejected,
        "warnings": batch.warnings,
    }
    response = Response(json.dumps(body), status=202, headers=headers, mimetype="application/json")
    return _cors(response, settings)


def _nothing_usable(batch: Batch, sent: int) -> Response:
    """The 400 of a body whose every event is invalid, each one's reason included."""
    first = batch.rejected[0]["error"]
    message = first if sent == 1 else f"no event of the batch is valid ({first}; ...)"
    response = jsonify(error=message, rejected=batch.rejected)
    response.status_code = 400
    return response


def make_blueprint(settings: Settings) -> Blueprint:
    """The public blueprint, with URLs from the app's settings."""
    bp = Blueprint("analytics_collect", __name__)
    bp.add_url_rule(settings.collect_url, "collect", collect, methods=["GET", "POST", "OPTIONS"])
    bp.add_url_rule(settings.script_url, "script", script_view)
    return bp
