"""The page id of a request with a server pageview (``web.pageviews``), which
``analytics_script()`` writes into the page for the tracker's first pageview."""

from __future__ import annotations

import uuid

from flask import g, request

from ..state import current_state


def page_id() -> str:
    """The page id of the current request (made on first use)."""
    value: str | None = g.get("_analytics_page_id")
    if value is None:
        value = g._analytics_page_id = str(uuid.uuid4())
    return value


def wants_page_id() -> bool:
    """Whether the current request's page is recorded by the server (a GET with server
    pageviews on): only then does ``analytics_script()`` write its page id."""
    return request.method == "GET" and current_state().settings.server_pageviews
