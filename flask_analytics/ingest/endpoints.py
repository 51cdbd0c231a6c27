"""Which Flask endpoint a page's path routes to, from the host app's URL map.

Only Werkzeug is needed (the map is the app's ``url_map``), so the pipeline stays free
of Flask. Matching is cached per (hostname, path): most traffic repeats a few pages.
"""

from __future__ import annotations

import functools
import threading
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

#: (hostname, path) pairs kept per app.
CACHE_SIZE = 4096


class EndpointMatcher:
    """``matcher(hostname, path)``: the endpoint a GET of that page routes to, or None.

    A path that matches no rule, matches one only for other methods, or would be
    redirected (a missing trailing slash) has no endpoint. The cache is emptied when
    rules are added to the map (an app may add routes after ``init_app``).
    """

    def __init__(self, url_map: Map) -> None:
        self.url_map = url_map
        self._rules = -1
        self._lock = threading.Lock()
        self._match = functools.lru_cache(maxsize=CACHE_SIZE)(self._uncached)

    def __call__(self, hostname: str, path: str) -> str | None:
        rules = len(self.url_map._rules)  # Werkzeug keeps no public counter of its rules
        if rules != self._rules:
            with self._lock:
                self._match.cache_clear()
                self._rules = rules
        return self._match(hostname, path)

    def _uncached(self, hostname: str, path: str) -> str | None:
        # Stored paths keep the URL's percent-escapes and, with hash routing, the route
        # after "#"; rules match the decoded path of the request.
        path = unquote(path.partition("#")[0]) or "/"
        adapter = self.url_map.bind(hostname, url_scheme="https")
        try:
            endpoint, _args = adapter.match(path, method="GET")
        except (HTTPException, RequestRedirect):
            return None
        return endpoint if isinstance(endpoint, str) else None
