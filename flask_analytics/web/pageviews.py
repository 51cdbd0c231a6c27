"""Server-side pageviews (``ANALYTICS_SERVER_PAGEVIEWS``): every HTML GET the app
answers with 2xx or 404 is a pageview, recorded in ``after_request`` through the same
pipeline as the collect endpoint (bots, DNT, exclusions), with its endpoint, status and
response time.

Each such request gets a page id (a random UUID, :func:`page_id`), which
``analytics_script()`` writes into the page (``data-page``); the tracker sends it with
the page's first pageview. Both pageviews get the event id derived from the page id and
the visitor (``ingest.pipeline.put_page_event_id``), so a page counts once with or
without JavaScript; a copy of the page a cache serves to another visitor is that
visitor's own pageview.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request
from werkzeug.urls import iri_to_uri

from ..errors import InvalidEvent
from ..ingest import pipeline
from ..ingest.payload import IncomingEvent, check_referrer, split_url
from ..models import URL_MAX
from ..state import current_state
from .collect import request_info
from .pageid import page_id

log = logging.getLogger(__name__)

#: Statuses whose pages are recorded: success, and "not found" (the error pages report).
NOT_FOUND = 404


def _start() -> None:
    g._analytics_started = time.perf_counter()


def _is_page(response: Response) -> bool:
    status = response.status_code
    headers = request.headers
    return (
        request.method == "GET"
        and (200 <= status < 300 or status == NOT_FOUND)
        and response.mimetype == "text/html"
        # A browser says what a request is for: a favicon's or an iframe's fetch (whose
        # 404 page is HTML too) is not a page the visitor sees, nor a prefetch (if the
        # visitor goes there, the tracker counts it).
        and headers.get("Sec-Fetch-Dest", "document") == "document"
        and "prefetch" not in headers.get("Sec-Purpose", headers.get("Purpose", ""))
        # The extension's own pages (the dashboard) are not the site's.
        and not (request.blueprint or "").startswith("analytics_")
    )


#: The page id in a tracker tag of ``analytics_script()`` (its ``data-page`` JSON, escaped).
_TAG_PAGE_ID = re.compile(rb'data-page="[^"]*?page_id&#34;:&#34;([0-9a-f-]{36})&#34;')


def _page_id_of(response: Response) -> str:
    """The page id the page carries: this request's, or, when the page was not rendered
    in this request (HTML cached inside the app), the one in its tracker tag, so that the
    tracker's pageview still matches the server's. Else a new one (no tag)."""
    if g.get("_analytics_page_id") is None and not response.is_streamed:
        found = _TAG_PAGE_ID.search(response.get_data())
        if found is not None:
            g._analytics_page_id = found.group(1).decode("ascii")
    return page_id()


def _record(response: Response) -> Response:
    if not _is_page(response):
        return response
    state = current_state()
    started = g.get("_analytics_started")
    try:
        # The URL as the browser has it (percent-escaped), as the tracker sends it.
        hostname, path, utm, click_ids = split_url(iri_to_uri(request.url), "url")
        referrer = request.referrer
        event = IncomingEvent(
            name="pageview",
            hostname=hostname,
            path=path,
            created_at=state.clock.utcnow(),
            event_id=str(uuid.uuid4()),
            referrer=check_referrer(referrer[:URL_MAX], "referrer") if referrer else None,
            utm=utm,
            click_ids=click_ids,
            page_id=_page_id_of(response),
        )
    except InvalidEvent:
        return response  # a URL or referrer no event may hold (control characters...)
    rule = request.url_rule
    event.extra["endpoint"] = rule.endpoint if rule is not None else None
    event.extra["status"] = response.status_code
    if started is not None:
        event.extra["duration_ms"] = round((time.perf_counter() - started) * 1000)
    info = request_info(state.settings)
    try:
        pipeline.process(state, [event], info)
    except Exception:  # analytics must never turn the host's page into an error
        log.exception("flask-analytics: the server pageview of %s was not recorded", path)
    return response


def install(app: Flask) -> None:
    """Record the pageviews of ``app``'s pages."""
    app.before_request(_start)
    app.after_request(_record)
