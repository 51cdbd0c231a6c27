"""Security and privacy: no raw IP or user agent stored, salts expire, dashboard closed,
no state-changing routes, security headers, and hostile strings inert in a real browser.

The dashboard's URLs are listed from ``app.url_map`` (every rule of the
``analytics_dashboard`` blueprint), so a route added later is covered without editing
this file. The XSS test sends its corpus through the collect endpoint in every tracked
field, aggregates, and opens every dashboard page in Debian's chromium.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import utcnow

from ..clock import FrozenClock
from ..conftest import DESKTOP_UA, MOBILE_UA, all_rows, collect_payload
from ..support.collect import answer

BLUEPRINT = "analytics_dashboard"


#: Sample values for the URL variables of dashboard rules.
@pytest.fixture
def app(make_app: Any) -> Flask:
    """This module's app has a goal and a funnel, so every dashboard route answers
    (``/api/funnel/Checkout`` names one)."""
    made: Flask = make_app(
        ANALYTICS_GOALS=[{"name": "Signup", "event": "signup"}],
        ANALYTICS_FUNNELS=[{"name": "Checkout", "steps": ["Signup", "Signup"]}],
    )
    return made


URL_VALUES = {
    "dimension": "page",
    "filename": "dashboard.css",
    "name": "Checkout",
    "key": "plan",
    "token": "not-a-share-token",
    "ident": "1",
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


# -- no raw IP, no user agent ------------------------------------------------------------------


def forbidden_forms(ip: str) -> set[str]:
    """The strings that would give ``ip`` away: its text forms and its network prefix.

    IPv4: the address and its /24 prefix with the dot ("198.51.100."), which also
    matches the anonymized "198.51.100.0". IPv6: compressed and exploded forms and the
    /48 prefix in both spellings. Embedded IPv4 (mapped, NAT64) counts as IPv4 too.
    """
    host = ip.split("%")[0].strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return set()
    forms = {ip}
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or (
            ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
            if addr in ipaddress.ip_network("64:ff9b::/96")
            else None
        )
        if embedded is not None:
            forms |= forbidden_forms(str(embedded))
        forms |= {addr.compressed, addr.exploded}
        if not addr.is_loopback and embedded is None:
            hextets = addr.exploded.split(":")[:3]
            forms.add(":".join(hextets) + ":")
            forms.add(":".join(h.lstrip("0") or "0" for h in hextets) + ":")
    else:
        forms.add(".".join(host.split(".")[:3]) + ".")
    return forms


def cell_texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return [raw.hex(), raw.decode("latin-1")]
    if isinstance(value, dict | list):
        return [json.dumps(value, ensure_ascii=False, default=str)]
    return [str(value)]


#: (REMOTE_ADDR, extra headers): direct IPv4/IPv6 in odd spellings, proxies with spoofed
#: and garbage X-Forwarded-For, and headers the extension must ignore.
SENDERS: list[tuple[str, dict[str, str]]] = [
    ("203.0.113.77", {}),
    ("2001:db8:abcd:12:3456:789a:bcde:f012", {}),
    ("2001:0DB8:00ab:0000:0000:ff00:0042:8329", {}),
    ("::ffff:198.51.100.9", {}),
    ("64:ff9b::c000:221", {}),
    ("fe80::1%eth0", {}),
    ("::1", {}),
    ("10.1.2.3", {"X-Forwarded-For": "192.0.2.200, 198.51.100.201"}),
    ("10.1.2.4", {"X-Forwarded-For": "2001:db8:beef:1::77"}),
    ("10.1.2.5", {"X-Forwarded-For": "203.0.113.250,203.0.113.251 , 203.0.113.252"}),
    ("10.1.2.6", {"X-Forwarded-For": "unknown, <script>"}),
    ("10.1.2.7", {"X-Forwarded-For": "[2001:db8:cafe::17]:443"}),
    (
        "172.16.9.9",
        {
            "Forwarded": "for=192.0.2.60;proto=https",
            "X-Real-IP": "192.0.2.61",
            "CF-Connecting-IP": "192.0.2.62",
            "True-Client-IP": "2001:db8:f00d::62",
        },
    ),
]


def every_ip() -> set[str]:
    found = set()
    for remote, headers in SENDERS:
        found.add(remote)
        for value in headers.values():
            for part in value.replace(";", ",").split(","):
                part = part.strip().removeprefix("for=")
                if part.startswith("["):
                    part = part[1 : part.index("]")]
                if forbidden_forms(part):
                    found.add(part)
    return found


@pytest.mark.usefixtures("frozen_clock")  # "today" and "3 days ago" stay where they were
@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_no_raw_ip_or_user_agent_anywhere_after_a_varied_run(
    make_app: Callable[..., Flask], trusted_proxies: int
) -> None:
    app = make_app(ANALYTICS_TRUSTED_PROXIES=trusted_proxies, ANALYTICS_RATE_LIMIT=None)
    analytics: Analytics = app.extensions["analytics_test"]
    client = app.test_client()
    marker = f"SecMarker{uuid.uuid4().hex[:12]}"
    agents = [f"{DESKTOP_UA} {marker}/1.0", f"{MOBILE_UA} {marker}/2.0"]
    sent = 0
    for i, (remote, headers) in enumerate(SENDERS):
        batch = [
            collect_payload(url=f"http://localhost/p{i}?utm_source=news", referrer="https://r.example/x"),
            collect_payload(name="signup", url=f"http://localhost/p{i}", props={"plan": "pro"}),
        ]  # fmt: skip
        response = client.post(
            "/_analytics/collect",
            json=batch,
            headers={"User-Agent": agents[i % 2], **headers},
            environ_base={"REMOTE_ADDR": remote},
        )
        assert response.get_json() == answer(2), (remote, headers)
        sent += 2
    # Dropped on purpose (DNT, bot): nothing of them may linger either.
    for extra in ({"DNT": "1"}, {"User-Agent": f"curl/8.4.0 {marker}"}):
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(),
            headers={"User-Agent": agents[0], **extra},
            environ_base={"REMOTE_ADDR": "203.0.113.78"},
        )
        assert response.status_code == 202
        assert response.headers["X-Analytics-Dropped"] in ("dnt", "bot")
    # Server-side events, a past day among them, so aggregation and archive run too.
    past = utcnow() - dt.timedelta(days=3)
    with app.app_context():
        for when, ip in ((None, "2001:db8:5eed:1::1"), (past, "198.51.100.140")):
            assert analytics.track(
                "pageview", url="https://example.com/s", ip=ip, user_agent=agents[1], timestamp=when
            )
            sent += 1
        analytics.aggregate(utcnow().date())
        analytics.aggregate(past.date())
        assert analytics.archive(older_than_days=1).moved == 1

    rows = all_rows(app)
    tables = {table for table, _ in rows}
    assert {"analytics_event", "analytics_event_archive", "analytics_salt"} <= tables
    assert len([t for t in tables if t.startswith("analytics_daily_")]) >= 8
    events = [r for t, r in rows if t in ("analytics_event", "analytics_event_archive")]
    assert len(events) == sent
    # The addresses were used (anonymized, hashed): different networks, different visitors.
    assert len({r["visitor_id"] for r in events}) >= 8

    forbidden = {form for ip in every_ip() for form in forbidden_forms(ip)}
    forbidden |= {marker, *agents}
    assert len(forbidden) > 40
    leaks = [
        (table, column, needle)
        for table, row in rows
        for column, value in row.items()
        for text in cell_texts(value)
        for needle in forbidden
        if needle in text
    ]
    assert leaks == []


def test_forbidden_forms_cover_prefixes_and_embedded_addresses() -> None:
    # The scan above is only as good as these strings.
    assert forbidden_forms("198.51.100.77") == {"198.51.100.77", "198.51.100."}
    assert "2001:db8:abcd:" in forbidden_forms("2001:db8:abcd:12::1")
    assert "2001:0db8:abcd:" in forbidden_forms("2001:db8:abcd:12::1")
    assert "198.51.100." in forbidden_forms("::ffff:198.51.100.9")
    assert "192.0.2." in forbidden_forms("64:ff9b::c000:221")
    assert "2001:db8:cafe::17" in every_ip()
    assert "192.0.2.60" in every_ip()


# -- salts ----------------------------------------------------------------------------------------


@pytest.mark.clock
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Adak"])
def test_salts_older_than_48_hours_are_deleted_and_forgotten(
    make_app: Callable[..., Flask], zone: str, frozen_clock: FrozenClock
) -> None:
    app = make_app(ANALYTICS_TIMEZONE=zone)
    analytics: Analytics = app.extensions["analytics_test"]
    state = analytics.state(app)
    now = frozen_clock.now().astimezone(state.settings.timezone)
    today = now.date()
    with app.app_context():
        old = {}
        state.salts.salt_for(today)
        for back in range(1, 7):
            old[back] = state.salts.salt_for(today - dt.timedelta(days=back))
        # A backfilled event creates the salt of its (old) day too.
        analytics.track("pageview", url="https://example.com/", ip="192.0.2.1",
                        timestamp=utcnow() - dt.timedelta(days=9))  # fmt: skip
        deleted = state.salts.expire()
        with analytics.db.engine.connect() as conn:
            days = set(conn.scalars(sa.select(analytics.Salt.__table__.c.date)))
        assert days == {today, today - dt.timedelta(days=1)}
        assert deleted == 6  # 2..6 days back and the backfilled day
        # Independently of the code's day arithmetic: every salt kept has been in use for
        # less than 48 hours, every deleted one for at least 48.
        for day in days:
            start = dt.datetime.combine(day, dt.time(), tzinfo=state.settings.timezone)
            assert now - start < dt.timedelta(hours=48)
        for back in range(2, 7):
            start = dt.datetime.combine(
                today - dt.timedelta(days=back), dt.time(), tzinfo=state.settings.timezone
            )
            assert now - start >= dt.timedelta(hours=48)
        # Forgotten in memory too: the same day now gets a new random salt.
        assert state.salts.salt_for(today - dt.timedelta(days=3)) != old[3]
        assert state.salts.salt_for(today - dt.timedelta(days=1)) == old[1]


# -- the dashboard: closed, read-only, headers -------------------------------------------------


def dashboard_urls(app: Flask, *, every: bool = False) -> list[tuple[str, str, frozenset[str]]]:
    """(endpoint, URL, methods) of every dashboard rule that answers GET, API rules also
    as CSV; with ``every``, also the copies under a (dead) share link and the write-only
    rules (annotations)."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{BLUEPRINT}."):
            continue
        if not every and ("token" in rule.arguments or "GET" not in (rule.methods or ())):
            continue
        missing = rule.arguments - URL_VALUES.keys()
        assert not missing, f"add a sample value for {missing} of {rule.rule} to URL_VALUES"
        url = adapter.build(rule.endpoint, {k: URL_VALUES[k] for k in rule.arguments})
        if rule.endpoint.endswith(("page_detail", "api_page")):
            url += "?path=/"
        methods = frozenset(rule.methods or ())
        found.append((rule.endpoint, url, methods))
        if rule.endpoint.split(".")[-1].startswith("api_") and "realtime" not in rule.endpoint:
            found.append(
                (rule.endpoint, url + ("&" if "?" in url else "?") + "format=csv", methods)
            )
    return found


def fetch(client: Any, url: str, method: str = "GET") -> Any:
    response = client.open(url, method=method)
    response.get_data()
    response.close()
    return response


def test_every_dashboard_url_in_the_url_map_is_closed_without_access(app: Flask) -> None:
    urls = dashboard_urls(app, every=True)
    endpoints = {endpoint.split(".")[-1] for endpoint, _, _ in urls}
    expected = {"overview", "pages", "page_detail", "sources", "locations", "devices",
                "events", "engagement", "realtime", "api_stats", "api_breakdown",
                "api_realtime", "static"}  # fmt: skip
    assert expected <= endpoints
    client = app.test_client()
    urls = [u for u in urls if "GET" in u[2]]
    for _, url, _ in urls:
        response = fetch(client, url)
        # Under an unknown share link: 404, as for a revoked or expired one.
        assert response.status_code == (404 if "/shared/" in url else 403), url
        assert b"visitors" not in response.get_data().lower(), url
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: False)
    for _, url, _ in urls:
        assert fetch(client, url).status_code == (404 if "/shared/" in url else 403), url


#: The only routes that change state: annotations (CSRF-protected, tests/web/test_annotations.py).
WRITES = {"annotation_create", "annotation_update", "annotation_delete", "api_annotations",
          "api_annotation"}  # fmt: skip


def test_no_dashboard_route_but_annotations_changes_state(app: Flask) -> None:
    """CSRF: annotations are the only writes (each checks a CSRF token); every other
    route answers 405 to POST, PUT, PATCH and DELETE."""
    urls = dashboard_urls(app, every=True)
    writes = {e.split(".")[-1] for e, _, m in urls if m & STATE_CHANGING}
    assert writes == WRITES
    client = app.test_client()
    analytics: Analytics = app.extensions["analytics_test"]
    written = {url for e, url, _ in urls if e.split(".")[-1] in WRITES}
    others = [url for _, url, _ in urls if url not in written]
    for method in sorted(STATE_CHANGING):
        for url in others:
            # Refused either way (403 closed, 404 under an unknown share link; static
            # files answer 405 before the check).
            assert fetch(client, url, method).status_code in (403, 404, 405), (method, url)
    analytics.dashboard_access(lambda: True)
    for method in sorted(STATE_CHANGING):
        for url in others:
            assert fetch(client, url, method).status_code == 405, (method, url)


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def check_security_headers(response: Any, url: str) -> None:
    headers = response.headers
    csp = csp_directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"], url
    assert csp["script-src"] == ["'self'"], url  # no inline, no eval, no other origin
    assert csp["object-src"] == ["'none'"], url
    assert csp["base-uri"] == ["'none'"], url
    assert csp["frame-ancestors"] in (["'self'"], ["'none'"]), url
    assert "'unsafe-inline'" not in csp.get("style-src", []), url
    assert headers["X-Content-Type-Options"] == "nosniff", url
    assert headers["Referrer-Policy"] == "no-referrer", url
    assert headers["X-Frame-Options"] in ("SAMEORIGIN", "DENY"), url
    if "/static/" not in url:
        assert headers["Cache-Control"] == "no-store", url


def test_security_headers_on_every_dashboard_answer(app: Flask) -> None:
    client = app.test_client()
    analytics: Analytics = app.extensions["analytics_test"]
    urls = [url for _, url, _ in dashboard_urls(app)]
    for url in urls:  # closed
        check_security_headers(fetch(client, url), url)
    analytics.dashboard_access(lambda: True)
    for url in urls:  # open
        response = fetch(client, url)
        assert response.status_code == 200, url
        check_security_headers(response, url)
    for url in ("/analytics/?period=fortnight", "/analytics/api/breakdown/nosuch",
                "/analytics/api/stats?start=x&end=y"):  # fmt: skip
        response = fetch(client, url)
        assert response.status_code in (400, 404), url
        check_security_headers(response, url)


def test_api_and_csv_answers_are_never_html(app: Flask) -> None:
    client = app.test_client()
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    for endpoint, url, _ in dashboard_urls(app):
        if "api_" not in endpoint:
            continue
        response = fetch(client, url)
        if "format=csv" in url:
            assert response.mimetype == "text/csv", url
            assert response.headers["Content-Disposition"].startswith("attachment;"), url
        else:
            assert response.mimetype == "application/json", url


# -- XSS corpus through every tracked field, in the browser ---------------------------------------

#: Hostile strings; every one that could run sets ``window.__pwned`` and opens a dialog.
XSS = [
    "<script>window.__pwned=1;alert(1)</script>",
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    '<svg onload="window.__pwned=1;alert(1)">',
    "<svg><script>window.__pwned=1;alert(1)</script></svg>",
    '<iframe srcdoc="<script>parent.__pwned=1;parent.alert(1)</script>"></iframe>',
    '<a href="javascript:window.__pwned=1;alert(1)">click</a>',
    "javascript:window.__pwned=1;alert(1)",
    "JaVaScRiPt:window.__pwned=1",
    "data:text/html,<script>window.__pwned=1;alert(1)</script>",
    '"><script>window.__pwned=1;alert(1)</script>',
    "'><img src=x onerror=window.__pwned=1;alert(1)>",
    '" autofocus onfocus="window.__pwned=1;alert(1)" x="',
    "' onmouseover='window.__pwned=1;alert(1)' autofocus='",
    "</title><script>window.__pwned=1;alert(1)</script>",
    "</textarea></style></script><script>window.__pwned=1;alert(1)</script>",
    '<details open ontoggle="window.__pwned=1;alert(1)">',
    "<body onload=window.__pwned=1;alert(1)>",
    "<input autofocus onfocus=window.__pwned=1;alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=1>",
    '<!--<img src="--><img src=x onerror=window.__pwned=1;alert(1)>">',
    "<scr<script>ipt>window.__pwned=1;alert(1)</scr</script>ipt>",
    "&lt;script&gt;window.__pwned=1;alert(1)&lt;/script&gt;",
    "%3Cscript%3Ewindow.__pwned=1;alert(1)%3C/script%3E",
    "\uff1cscript\uff1ewindow.__pwned=1;alert(1)\uff1c/script\uff1e",
    "\u2028\u2029</script><script>window.__pwned=1;alert(1)</script>",
    "\u202e<img src=x onerror=window.__pwned=1;alert(1)>",
    "\u200b<svg/onload=window.__pwned=1;alert(1)>",
    "{{constructor.constructor('window.__pwned=1')()}}${window.__pwned=1}",
    '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=1">',
    '<base href="javascript:window.__pwned=1//">',
    '<link rel=stylesheet href="data:text/css,*{color:red}">',
]

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

INIT_SCRIPT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""

#: What a page must not contain, whatever its data: handlers, script URLs, foreign or
#: inline scripts, frames, <base>, a meta refresh to a URL, inline style.
DOM_CHECK = """
() => {
  const bad = [];
  const urlAttrs = ['href', 'src', 'action', 'formaction', 'data', 'srcdoc', 'xlink:href', 'poster'];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      if (name.startsWith('on')) bad.push(el.tagName + ' ' + name);
      // The layout's own empty favicon (<link rel="icon" href="data:,">) is fine.
      const ownIcon = el.tagName === 'LINK' && el.rel === 'icon' && a.value === 'data:,';
      if (urlAttrs.includes(name) && !ownIcon && /^\\s*(javascript|data|vbscript):/i.test(a.value)) {
        bad.push(el.tagName + ' ' + name + '=' + a.value.slice(0, 40));
      }
    }
  }
  for (const s of document.querySelectorAll('script')) {
    if (!s.src || new URL(s.src).origin !== location.origin || s.textContent.trim()) {
      bad.push('script ' + (s.src || s.textContent.slice(0, 40)));
    }
  }
  for (const sel of ['iframe', 'frame', 'object', 'embed', 'base', 'style']) {
    for (const el of document.querySelectorAll(sel)) bad.push(sel);
  }
  // Only the realtime page's own reload (content="30", no URL) may be a meta refresh.
  for (const m of document.querySelectorAll('meta[http-equiv]')) {
    if (m.httpEquiv.toLowerCase() !== 'refresh' || !/^\\s*\\d+\\s*$/.test(m.content)) {
      bad.push('meta ' + m.httpEquiv + ' ' + m.content.slice(0, 40));
    }
  }
  return bad;
}
"""


def shown(text: str) -> str:
    """Text with whitespace collapsed (as HTML shows it), for comparing with page text."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def path_of(i: int, payload: str) -> str:
    return f"/xss/{i}/" + payload.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


@pytest.fixture
def hostile(app: Flask, analytics: Analytics) -> dict[str, Any]:
    """Every payload sent through every tracked field (yesterday and today), aggregated."""
    assert all(len(p) <= 120 for p in XSS)  # fits the shortest field (event name)
    client = app.test_client()
    now = utcnow()
    yesterday = now.date() - dt.timedelta(days=1)
    # Offset back to 23:58 yesterday, or by the whole 24 h a queued event may carry when
    # it is later than 23:58 now (still yesterday, at this time of day).
    to_yesterday = int((now - dt.datetime.combine(now.date(), dt.time())).total_seconds() * 1000)
    to_yesterday = min(to_yesterday + 120_000, 24 * 3600 * 1000)
    for offset in (to_yesterday, None):
        for i, payload in enumerate(XSS):
            query = urlencode(dict.fromkeys(UTM_FIELDS, payload))
            pageview = collect_payload(
                url=f"http://localhost{path_of(i, payload)}?{query}",
                referrer=f"https://ref{i}.example/{quote(payload)}" if i % 2 else payload,
            )
            custom = collect_payload(
                name=payload, url="http://localhost/", props={payload: payload}
            )
            batch = [pageview, custom]
            if offset is not None:
                for event in batch:
                    event["offset_ms"] = offset
            response = client.post(
                "/_analytics/collect", json=batch, headers={"User-Agent": DESKTOP_UA},
                environ_base={"REMOTE_ADDR": f"198.18.{i}.1"},  # a visitor each
            )  # fmt: skip
            assert response.get_json() == answer(2), payload
    # Last, so the realtime feed (latest 20 events) shows it: every payload as a key.
    props = {p: XSS[(i + 1) % len(XSS)] for i, p in enumerate(XSS[:30])}
    response = client.post(
        "/_analytics/collect",
        json=collect_payload(name="xss-props", url="http://localhost/props", props=props),
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.get_json() == answer(1)
    with app.app_context():
        analytics.aggregate(yesterday)
        analytics.aggregate(now.date())
        with analytics.db.engine.connect() as conn:
            table = analytics.Event.__table__
            stored = list(conn.execute(sa.select(table)).mappings())
    # Every field kept the payload as sent (names and UTM values are only stripped).
    assert {r["name"] for r in stored} >= {p.strip() for p in XSS}
    for field in UTM_FIELDS:
        assert {r[field] for r in stored if r[field]} == {p.strip() for p in XSS}, field
    assert {r["path"] for r in stored if r["path"].startswith("/xss/")} == {
        path_of(i, p) for i, p in enumerate(XSS)
    }
    analytics.dashboard_access(lambda: True)
    return {"yesterday": yesterday}


# The browser half on SQLite only: what the pages render does not depend on the database,
# and the payloads' storage on PostgreSQL is checked by the tests above and by
# test_dashboard_browser.py's untrusted strings, on both.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_xss_corpus_in_every_tracked_field_is_inert_in_the_browser(
    app: Flask, hostile: dict[str, Any], browser: Any, live_server: Any
) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    query = "?period=7d&limit=100"
    urls = []
    for endpoint, url, _ in dashboard_urls(app):
        name = endpoint.split(".")[-1]
        if name == "static" or "format=csv" in url:
            continue  # CSV is an attachment (a download), checked without the browser
        if name in ("page_detail", "api_page"):
            route = "pages/detail" if name == "page_detail" else "api/page"
            urls += [
                f"/analytics/{route}?period=7d&path={quote(path_of(i, p))}"
                for i, p in enumerate(XSS)
            ]
        elif name == "api_breakdown":
            urls += [
                f"/analytics/api/breakdown/{d}{query}" for d in ("page", "event", *UTM_FIELDS[:3])
            ]
        else:
            urls.append(url + (query if "?" not in url else "&period=7d"))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(INIT_SCRIPT)
    dialogs: list[str] = []
    errors: list[str] = []

    def open_tab(url: str) -> tuple[Any, Any]:
        tab = context.new_page()
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        tab.on(
            "console",
            lambda m: errors.append(f"{tab.url}: {m.text}") if m.type == "error" else None,
        )
        tab.on("pageerror", lambda exc: errors.append(f"{tab.url}: {exc}"))
        tab.on("requestfailed", lambda r: errors.append(f"{tab.url}: failed {r.url}"))
        tab.on(
            "response",
            lambda r: errors.append(f"{tab.url}: {r.status} {r.url}") if r.status >= 400 else None,
        )
        return tab, tab.goto(live_server.url + url, wait_until="commit")

    texts = {}
    try:
        # A few tabs load at once: their half-second waits for an idle network overlap.
        for first in range(0, len(urls), 8):
            batch = [(url, *open_tab(url)) for url in urls[first : first + 8]]
            for url, tab, response in batch:
                assert response is not None, url
                assert response.status == 200, url
                tab.wait_for_load_state("load")
                tab.wait_for_load_state("networkidle")
                tab.mouse.move(640, 450)  # a hover, for handlers that need one
                assert tab.evaluate("typeof window.__pwned") == "undefined", url
                assert tab.evaluate("window.__csp") == [], url
                assert tab.evaluate(DOM_CHECK) == [], url
                texts[url] = shown(tab.evaluate("document.body ? document.body.textContent : ''"))
            for _url, tab, _response in batch:
                tab.close()
    finally:
        context.close()
    assert dialogs == []
    # Chromium asks for /favicon.ico when it shows a JSON document (the live test app has
    # none): that 404 is the browser's, not the dashboard's.
    favicon = "Failed to load resource: the server responded with a status of 404"
    assert [e for e in errors if not ("/api/" in e.split(": ")[0] and favicon in e)] == []

    # The payloads did reach the pages, as text: the test above was not vacuous.
    def seen(page: str, value: str) -> bool:
        return shown(value) in texts[page]

    pages_url = f"/analytics/pages{query}"
    sources_url = f"/analytics/sources{query}"
    events_url = f"/analytics/events{query}"
    realtime_url = next(u for u in texts if u.startswith("/analytics/realtime"))
    assert all(seen(pages_url, path_of(i, p)) for i, p in enumerate(XSS))
    assert [p for p in XSS if not seen(sources_url, p)] == []
    assert [p for p in XSS if not seen(events_url, p)] == []
    assert [p for p in XSS[:30] if not seen(realtime_url, p)] == []
    details = [u for u in texts if "/pages/detail" in u]
    assert len(details) == len(XSS)
    assert all(seen(u, path_of(i, p)) for i, (u, p) in enumerate(zip(details, XSS, strict=True)))
