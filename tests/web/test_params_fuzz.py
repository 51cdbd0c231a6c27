"""Bad query parameters answer 400 (or 404) with a message, never 500, on every route.

The three cases found by trying come first (a date in December 9999, ``limit=²``, a NUL
in the page detail's path). Then every query parameter of every dashboard route gets a
table of hostile values (empty, huge, other scripts' digits, NUL and control
characters, surrogates and invalid UTF-8 as percent escapes, negative numbers, floats,
dates out of range, repeated parameters) and each answer is checked against an
independent statement of what the parameter accepts: 200 for a value it accepts, 400
with a message for one it refuses (JSON ``{"error": ...}`` for the API, the error page
for the HTML pages). ``filter`` (DIMENSION:OP:VALUE, repeatable) gets its own table of
well-formed and broken filters. Hypothesis then mixes several parameters at once and
builds filters with arbitrary values. One app per database serves all the requests of a
test, on seeded data (aggregated days, a live day, today).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_analytics import Analytics
from flask_analytics.reports import BREAKDOWNS, MAX_RANGE_DAYS, DateRange
from flask_analytics.reports.ranges import LAST_DATE
from flask_analytics.web.dashboard.helpers import Helpers
from flask_analytics.web.dashboard.query import ViewQuery

from ..clock import FrozenClock
from ..support.seeded_stats import TIMEZONE, seed

PREFIX = "/analytics"
DAY = dt.timedelta(days=1)
FIRST_DATE = dt.date(1971, 1, 1)

#: What each parameter accepts, written from DESIGN.md and the pages' controls.
PERIODS = ("today", "yesterday", "7d", "30d", "90d", "12mo")
COMPARES = ("previous", "year", "none")
METRICS = (
    "visitors",
    "sessions",
    "pageviews",
    "views_per_session",
    "bounce_rate",
    "avg_visit_duration_s",
)
FORMATS = ("json", "csv")
MAX_LIMIT = 10_000
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

QUERY = ("period", "start", "end", "dates", "compare", "metric", "filter")
#: The parameters each dashboard endpoint reads ("dates": start and end both set to the
#: value). A route missing here fails the fuzz test: say what it reads.
READS: Mapping[str, tuple[str, ...]] = {
    "overview": QUERY,
    "pages": (*QUERY, "limit", "page", "offset"),
    "page_detail": (*QUERY, "path"),
    "api_page": (*QUERY, "path", "format"),
    "sources": (*QUERY, "limit", "more"),
    "locations": (*QUERY, "limit", "more"),
    "devices": (*QUERY, "limit", "more"),
    "events": (*QUERY, "limit", "prop"),
    "engagement": QUERY,
    "realtime": (),
    "api_stats": (*QUERY, "format"),
    "api_breakdown": (*QUERY, "format", "limit", "page", "offset"),
    "api_prop_breakdown": (*QUERY, "format", "limit", "page", "offset"),
    "api_props": (*QUERY, "format", "limit", "event"),
    "api_suggest": (*QUERY, "limit", "q"),
    "api_realtime": (),
    "api_sessions": (*QUERY, "format"),
    "api_devices": (*QUERY, "format", "limit", "page", "offset", "by"),
    "api_experience": (*QUERY, "format", "limit", "page", "offset"),
    "api_endpoints": (*QUERY, "format"),
    "api_errors": (*QUERY, "format", "limit", "page", "offset"),
    # The goals and funnels routes parse the period, comparison and filters with the
    # same current_query() as every route above; their own parameters are fuzzed here
    # (each accepted request computes every goal: the query parameters would cost a
    # minute more).
    "goals": ("goal", "metric"),
    "funnels": ("funnel", "compare"),
    "api_goals": ("format",),
    "api_funnel": ("format", "compare"),
    "annotations_page": QUERY,
    "api_annotations": (*QUERY, "format"),
}
#: The fuzzed app's goals and funnel (``goal=`` and ``funnel=`` accept these names).
GOALS = [{"name": "Signup", "event": "signup"}, {"name": "Pricing", "page": "/pricing*"}]
FUNNELS = [{"name": "Checkout", "steps": ["Pricing", "Signup"]}]
#: Parameters a route needs besides the fuzzed one.
BASE: Mapping[str, Mapping[str, str]] = {
    "page_detail": {"path": "/pricing"},
    "api_page": {"path": "/pricing"},
}

#: Hostile values as text (sent percent-encoded as UTF-8).
TEXT_VALUES: tuple[str, ...] = (
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "1e3",
    "+5",
    "10000",
    "10001",
    "²",
    "\uff11\uff10",  # fullwidth 10
    "9" * 5000,
    "x" * 20_000,
    "\x00",
    "/\x00",
    "/\t",
    "/\x85",
    "\u202e💥",
    "<script>alert(1)</script>",
    "12mo",
    "custom",
    "year",
    "bounce_rate",
    "csv",
    "/",
    "/ünïcødé",
    "/" + "a" * 1999,
    "/" + "a" * 2000,
    "2024-02-29",
    "2026-02-29",
    "2026-1-1",
    "\uff12\uff10\uff12\uff16-01-01",  # fullwidth 2026
    "1970-12-31",
    FIRST_DATE.isoformat(),
    LAST_DATE.isoformat(),
    (LAST_DATE + DAY).isoformat(),
    "9999-12-31",
    "10000-01-01",
)
#: Raw percent escapes: invalid UTF-8, an encoded surrogate, an overlong NUL, bad escapes.
RAW_VALUES: tuple[str, ...] = (
    "%00",
    "%2F%00",
    "%ED%A0%80",
    "%2F%ED%A0%80",
    "%FF%FE",
    "%C0%80",
    "%uD800",
    "%",
)
#: Hostile parameter names (each sent with a value on every route: ignored).
NAMES: tuple[str, ...] = ("", "%00", "%ED%A0%80", "limit%5B%5D", "x" * 5000)


#: Filter dimensions and operators (DESIGN.md v2: ``filter=DIMENSION:OP:VALUE``).
FILTER_DIMENSIONS = (
    "page",
    "entry_page",
    "exit_page",
    "hostname",
    "referrer",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "device_type",
    "browser",
    "os",
    "browser_version",
    "os_version",
    "language",
    "region",
    "city",
    "screen",
    "event",
)
OPERATORS = ("is", "is_not", "contains", "matches")
#: Limits of a filter: its text, its alternatives, a property key, filters per request.
FILTER_TEXT_MAX = 2000
ALTERNATIVES_MAX = 50
PROP_KEY_MAX = 64
FILTERS_MAX = 20
FILTER_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Sent:
    """One query-string value: as sent (percent-encoded) and as the server decodes it."""

    raw: str
    text: str


def as_sent(text: str) -> Sent:
    return Sent(quote(text, safe="", errors="surrogatepass"), text)


def as_raw(raw: str) -> Sent:
    return Sent(raw, unquote(raw, errors="replace"))


VALUES: tuple[Sent, ...] = (
    *(as_sent(v) for v in TEXT_VALUES),
    *(as_raw(v) for v in RAW_VALUES),
)
#: Well-formed filters (each costs a read of raw events), then broken ones. No
#: backslash: the oracle below splits alternatives on every ``|``.
FILTER_GOOD: tuple[Sent, ...] = (
    as_raw("page:is:%ED%A0%80"),
    as_sent("source:is:Google"),
    as_sent("page:is_not:/pricing|/about"),
    as_sent("country:is:(none)"),
    as_sent("page:matches:/blog/*"),
    as_sent("page:contains:%_[?*"),
    as_sent("prop:plan:is:pro"),
    as_sent("utm_campaign:is:<script>alert(1)</script>"),
    as_sent("browser:is:" + "|".join(f"b{i}" for i in range(ALTERNATIVES_MAX))),
    as_sent("page:is:/" + "a" * (FILTER_TEXT_MAX - 20)),
)
FILTER_BAD: tuple[Sent, ...] = (
    as_raw("page:is:%00"),
    as_raw("page%00:is:x"),
    *(
        as_sent(v)
        for v in (
            "nope:is:x",
            "PAGE:is:x",
            " page:is:x",
            "page:eq:x",
            "page:IS:x",
            "page:is:",
            "page:is:a||b",
            "page:is:a|",
            "page",
            "page:is",
            ":is:x",
            "prop::is:x",
            "prop:plan",
            "prop:" + "k" * (PROP_KEY_MAX + 1) + ":is:x",
            "page:contains:(none)",
            "page:matches:(none)|/a",
            "page:is:/\x00",
            "page:is:/\t",
            "page:is:/\x7f",
            "page:is:" + "a" * 5000,
            "browser:is:" + "|".join(f"b{i}" for i in range(ALTERNATIVES_MAX + 1)),
        )
    ),
)


def filter_accepted(text: str) -> bool:
    """Whether one ``filter`` parameter is well formed (backslash-free ``text``)."""
    if len(text) > FILTER_TEXT_MAX or FILTER_CONTROL.search(text):
        return False
    if text.startswith("prop:"):
        key, sep, rest = text[len("prop:") :].partition(":")
        if not sep or not key or len(key) > PROP_KEY_MAX:
            return False
    else:
        dimension, sep, rest = text.partition(":")
        if not sep or dimension not in FILTER_DIMENSIONS:
            return False
    op, sep, value = rest.partition(":")
    alternatives = value.split("|")
    if not sep or op not in OPERATORS or "" in alternatives:
        return False
    if len(alternatives) > ALTERNATIVES_MAX:
        return False
    return not (op in ("contains", "matches") and "(none)" in alternatives)


def a_date(text: str) -> dt.date | None:
    """``text`` as a date the dashboard accepts (YYYY-MM-DD in ASCII, 1971 to LAST_DATE)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DATE <= day <= LAST_DATE else None


def accepted(name: str, text: str) -> bool:
    """Whether parameter ``name`` (alone, the others left out) accepts ``text``."""
    if name == "period":
        return text in ("", *PERIODS)
    if name == "compare":
        return text in ("", *COMPARES)
    if name == "metric":
        return text in ("", *METRICS)
    if name == "format":
        return text in ("", *FORMATS)
    if name == "limit":
        if text == "":
            return True
        return len(text) <= 5 and text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT
    if name in ("start", "end"):
        return False  # one without the other
    if name == "dates":
        return a_date(text) is not None
    if name == "path":
        return text.startswith("/") and len(text) <= 2000 and not CONTROL.search(text)
    if name == "filter":
        return filter_accepted(text)
    if name == "q":
        return len(text) <= FILTER_TEXT_MAX
    if name in ("page", "offset"):
        # page: 1 to 1,000,001 at the API's 100 rows (more at the Pages screen's 25);
        # offset: 0 to 100,000,000.
        if text == "":
            return True
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            return False
        return 1 <= int(text) <= 1_000_001 if name == "page" else int(text) <= 100_000_000
    if name == "prop":  # a property key a filter can name
        return len(text) <= PROP_KEY_MAX and ":" not in text and not FILTER_CONTROL.search(text)
    if name == "event":
        return len(text) <= FILTER_TEXT_MAX and not FILTER_CONTROL.search(text)
    if name == "more":  # a panel of the page: no hostile value names one
        return text == ""
    if name == "goal":
        return text in ("", *(g["name"] for g in GOALS))
    if name == "funnel":
        return text in ("", *(f["name"] for f in FUNNELS))
    if name == "by":
        keys = text.split(",")
        devices = ("device_type", "browser", "os")
        alone = ("", "screen", "screen_width")
        return text in alone or (len(set(keys)) == len(keys) and set(keys) <= set(devices))
    raise AssertionError(name)


# -- the app and its answers --------------------------------------------------------------------


@pytest.fixture
def fuzz_app(make_app: Any, frozen_clock: FrozenClock) -> Flask:
    """A dashboard open to every request, over seeded data: aggregated days, a live day,
    today; time stays frozen while the test sends its requests."""
    app: Flask = make_app(
        ANALYTICS_TIMEZONE=TIMEZONE, ANALYTICS_GOALS=GOALS, ANALYTICS_FUNNELS=FUNNELS
    )
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    seed(app, analytics, visitors=6, past_days=3)
    return app


def routes(app: Flask) -> list[str]:
    """The dashboard's endpoints (short names), from the app's URL map."""
    names = sorted({
        rule.endpoint.rsplit(".", 1)[1]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("analytics_dashboard.")
        and not rule.endpoint.endswith("static")
        and "GET" in (rule.methods or ())
    })  # fmt: skip
    unknown = [name for name in names if name not in READS]
    assert not unknown, f"add {unknown} to READS with the parameters they read"
    return names


def route_url(endpoint: str, dimension: str = "page") -> str:
    if endpoint == "api_breakdown":
        return f"{PREFIX}/api/breakdown/{dimension}"
    if endpoint == "api_suggest":
        return f"{PREFIX}/api/suggest/{dimension}"
    paths = {
        "overview": "/",
        "page_detail": "/pages/detail",
        "api_page": "/api/page",
        "api_stats": "/api/stats",
        "api_sessions": "/api/sessions",
        "api_devices": "/api/devices",
        "api_prop_breakdown": "/api/breakdown/prop:plan",
        "api_props": "/api/props",
        "api_experience": "/api/experience",
        "api_endpoints": "/api/endpoints",
        "api_errors": "/api/errors",
        "api_goals": "/api/goals",
        "api_funnel": "/api/funnel/Checkout",
        "annotations_page": "/annotations",
        "api_annotations": "/api/annotations",
    }
    if endpoint in paths:
        return PREFIX + paths[endpoint]
    if endpoint == "api_realtime":
        return f"{PREFIX}/api/realtime"
    return f"{PREFIX}/{endpoint}"


def query_string(pairs: Sequence[tuple[str, str]]) -> str:
    """``pairs`` of (name, value) as a query string, both already percent-encoded."""
    return "&".join(f"{name}={raw}" for name, raw in pairs)


ERROR_MESSAGE = re.compile(r'<p class="fa-error__message">(.*?)</p>', re.S)


def message_of(url: str, response: Any) -> str | None:
    """The message of a refusal: JSON ``error`` for the API, the error page's otherwise."""
    if url.startswith(f"{PREFIX}/api/"):
        data = response.get_json(silent=True)
        message = data.get("error") if isinstance(data, dict) else None
        return message if isinstance(message, str) else None
    found = ERROR_MESSAGE.search(response.get_data(as_text=True))
    return html.unescape(found.group(1)).strip() if found else None


def problem(url: str, response: Any, expected: int | None = None) -> str | None:
    """What is wrong with ``response`` (None when it is a proper answer): a status of 200,
    400 or 404 (``expected`` when given), and for a refusal its message."""
    response.get_data()
    response.close()
    status = response.status_code
    if status not in (200, 400, 404):
        return f"{url[:200]}: {status}"
    if expected is not None and status != expected:
        return f"{url[:200]}: {status}, expected {expected}"
    if status == 200:
        api = url.startswith(f"{PREFIX}/api/")
        wanted = ("application/json", "text/csv") if api else ("text/html",)
        return None if response.mimetype in wanted else f"{url[:200]}: 200 as {response.mimetype}"
    message = message_of(url, response)
    if not message or not message.strip():
        return f"{url[:200]}: {status} without a message"
    if len(message) > 400:
        return f"{url[:200]}: {status} with a message of {len(message)} characters"
    return None


Sender = Callable[[str, Sequence[tuple[str, str]], int | None], None]


def sender(app: Flask, problems: list[str]) -> Sender:
    """Sends GET requests to ``app``, adding what is wrong with each answer to ``problems``."""
    client = app.test_client()

    def send(path: str, pairs: Sequence[tuple[str, str]], expected: int | None) -> None:
        url = f"{path}?{query_string(pairs)}" if pairs else path
        found = problem(url, client.get(url), expected)
        if found:
            problems.append(found)

    return send


def pairs_for(endpoint: str, name: str, raw: str) -> list[tuple[str, str]]:
    """The query of ``endpoint`` with parameter ``name`` set to ``raw`` (encoded)."""
    base = [(k, quote(v, safe="")) for k, v in BASE.get(endpoint, {}).items() if k != name]
    if name == "dates":
        return [*base, ("start", raw), ("end", raw)]
    return [*base, (quote(name, safe=""), raw)]


# -- the three known cases ----------------------------------------------------------------------

LAST = LAST_DATE.isoformat()
DATE_ROUTES = ("/", "/pages", "/pages/detail?path=/", "/api/stats", "/api/breakdown/page")
LIMIT_ROUTES = ("/pages", "/events", "/api/breakdown/page")
#: (routes, query, the message's words)
KNOWN: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (DATE_ROUTES, "start=9999-12-01&end=9999-12-31", f"start must be {LAST} or earlier"),
    (DATE_ROUTES, "start=2026-12-01&end=9999-12-31", f"end must be {LAST} or earlier"),
    (DATE_ROUTES, "period=custom&start=9999-12-31&end=9999-12-31&compare=year", LAST),
    (DATE_ROUTES, "start=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01&end=2026-01-02", "YYYY-MM-DD"),
    (LIMIT_ROUTES, "limit=%C2%B2", "limit must be a whole number from 1 to 10000, not '²'"),
    (LIMIT_ROUTES, "limit=%D9%A3", "limit must be a whole number from 1 to 10000"),
    (LIMIT_ROUTES, "limit=" + "9" * 5000, "limit must be a whole number from 1 to 10000"),
)


def test_known_bad_values_answer_400_with_their_message(fuzz_app: Flask) -> None:
    client = fuzz_app.test_client()
    for paths, query, words in KNOWN:
        for path in paths:
            url = f"{PREFIX}{path}{'&' if '?' in path else '?'}{query}"
            response = client.get(url)
            assert response.status_code == 400, url
            assert words in (message_of(url, response) or ""), url


def test_page_detail_path_refuses_control_characters(fuzz_app: Flask) -> None:
    """NUL (which PostgreSQL cannot store in text) and the other control characters are
    refused, as collection refuses them; any other page path is shown."""
    client = fuzz_app.test_client()
    for path in ("/%00", "/a%00b", "%00", "/%09", "/%0A", "/%1F", "/%7F", "/%C2%85", "/%C2%9F"):
        url = f"{PREFIX}/pages/detail?path={path}"
        response = client.get(url)
        assert response.status_code == 400, path
        assert "path must" in (message_of(url, response) or ""), path
    for path in ("/pricing", "/%C3%BC", "/%ED%A0%80", "/%C2%A0", "/%E2%80%AE", "/" + "a" * 1999):
        assert client.get(f"{PREFIX}/pages/detail?path={path}").status_code == 200, path


def test_the_last_and_first_dates_are_served(fuzz_app: Flask) -> None:
    """The last date renders on every page and API with each comparison, and so do the
    longest range ending there and the longest starting on the first date (on the
    overview, with its period links, and the stats API: each day of a five-year range
    costs a little), without a next-period link past the last date."""
    longest = DateRange(LAST_DATE - (MAX_RANGE_DAYS - 1) * DAY, LAST_DATE)
    first = DateRange(FIRST_DATE, FIRST_DATE + (MAX_RANGE_DAYS - 1) * DAY)
    problems: list[str] = []
    send = sender(fuzz_app, problems)
    for endpoint, reads in READS.items():
        if "dates" not in reads:
            continue
        for compare in COMPARES:
            dates = [("start", LAST), ("end", LAST)]
            send(route_url(endpoint), pairs_for(endpoint, "compare", compare) + dates, 200)
    send(route_url("api_stats"), [("start", longest.start.isoformat()), ("end", LAST)], 200)
    assert problems == []
    client = fuzz_app.test_client()
    for rng in (longest, first):
        page = client.get(f"{PREFIX}/?start={rng.start}&end={rng.end}")
        assert page.status_code == 200
        html_text = page.get_data(as_text=True)
        assert ('aria-label="Next period"' in html_text) == (rng is first)
        assert 'aria-label="Previous period"' in html_text
    past = client.get(f"{PREFIX}/?start=2001-01-01&end=2001-01-07").get_data(as_text=True)
    assert "start=2001-01-08&amp;end=2001-01-14" in past
    too_long = client.get(f"{PREFIX}/api/stats?start={longest.start - DAY}&end={LAST}")
    assert too_long.status_code == 400


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no query is run
def test_period_links_stop_at_the_end_of_the_calendar(app: Flask) -> None:
    """The next-period link of a range the parser would refuse, built directly, is None
    rather than an OverflowError, with or without a "today"."""
    with app.test_request_context(f"{PREFIX}/"):
        for end in (LAST_DATE, dt.date.max - DAY, dt.date.max):
            for days in (1, 7, MAX_RANGE_DAYS):
                rng = DateRange(end - (days - 1) * DAY, end)
                for today in (None, dt.date.max):
                    helpers = Helpers(ViewQuery("custom", rng, "previous", "visitors"), today=today)
                    assert helpers.shift(1) is None, (rng, today)
                    if end == LAST_DATE:
                        before = helpers.shift(-1) or ""
                        assert f"end={(rng.start - DAY).isoformat()}" in before
        twelve = DateRange(dt.date(9999, 1, 1), dt.date(9999, 12, 31))
        assert Helpers(ViewQuery("12mo", twelve, "previous", "visitors")).shift(1) is None


def test_a_range_ending_on_the_calendars_last_day_lists_its_dates() -> None:
    rng = DateRange(dt.date.max - 2 * DAY, dt.date.max)
    assert list(rng.dates()) == [dt.date(9999, 12, 29), dt.date(9999, 12, 30), dt.date.max]
    # The last date a report may cover leaves room for the longest range's next period
    # and one more day (that period's UTC bounds).
    assert dt.date.max - LAST_DATE >= (MAX_RANGE_DAYS + 1) * DAY


# -- every parameter of every route ---------------------------------------------------------------

#: Start or end alone is refused before its value is read: a few values are enough.
ALONE: tuple[Sent, ...] = (as_sent(""), as_sent(LAST), as_raw("%00"), as_sent("9" * 5000))
#: A value each parameter accepts, to repeat a parameter with.
GOOD: Mapping[str, str] = {"path": "/pricing", "limit": "5", "format": "csv", "metric": "sessions"}
#: The hostile values that are not plain words: empty, huge, control characters, escapes.
ODD_VALUES: tuple[Sent, ...] = tuple(
    v for v in VALUES if not v.text or len(v.text) > 100 or CONTROL.search(v.text) or "%" in v.raw
)
#: Accepted values sent to a route for parameters whose every accepted value costs a read
#: of its own (refused ones are cheap, and all are sent); the breakdown API gets them all.
ACCEPTED_SENT: Mapping[str, int] = {"filter": 1, "q": 3}
FULL_API = "api_breakdown"
#: The routes that get every hostile value of the shared query parameters (:data:`QUERY`,
#: read by one parser for every route): one page, one API.
FULL_QUERY = ("overview", FULL_API)
#: The refused values the other routes get for those parameters, beside every accepted
#: one: one of each kind (empty, NUL, huge, encoded surrogate, invalid UTF-8, digit-like).
REFUSED_SAMPLE: tuple[Sent, ...] = tuple(
    {
        v.raw: v
        for v in VALUES
        if v.raw in ("", "%00", "9" * 5000, "%ED%A0%80", "%FF%FE", "%C2%B2")
    }.values()
)


def values_of(endpoint: str, name: str) -> tuple[Sent, ...]:
    """The values parameter ``name`` of ``endpoint`` is sent."""
    if name in ("start", "end"):
        return ALONE
    if name == "filter":
        if endpoint == FULL_API:
            return (*ODD_VALUES, *FILTER_BAD, *FILTER_GOOD)
        bad = ODD_VALUES if endpoint in FULL_QUERY else REFUSED_SAMPLE
        return (*bad, *FILTER_BAD[:2], FILTER_BAD[-1], *FILTER_GOOD[: ACCEPTED_SENT[name]])
    if name in QUERY and endpoint not in FULL_QUERY:
        return (*(v for v in VALUES if accepted(name, v.text)), *REFUSED_SAMPLE)
    if name == "q":
        short = tuple(v for v in VALUES if accepted("q", v.text))[: ACCEPTED_SENT[name]]
        return (*short, *(v for v in VALUES if not accepted("q", v.text)))
    return VALUES


def send_repeated_filters(endpoint: str, send: Sender) -> int:
    """``filter`` repeated: every one counts (AND), so one broken filter is refused
    wherever it stands, and so are more than :data:`FILTERS_MAX`."""
    url = route_url(endpoint)
    good = [v.raw for v in FILTER_GOOD[:2]]
    base = pairs_for(endpoint, "x", "1")
    sent = 0
    if endpoint == FULL_API:
        send(url, [*base, ("filter", good[0]), ("filter", good[1])], 200)
        sent += 1
    for bad in (FILTER_BAD[0].raw, FILTER_BAD[-1].raw):
        send(url, [*base, ("filter", good[0]), ("filter", bad)], 400)
        send(url, [*base, ("filter", bad), ("filter", good[0])], 400)
        sent += 2
    many = [("filter", quote(f"page:is:/{i}", safe="")) for i in range(FILTERS_MAX + 1)]
    send(url, [*base, *many], 400)
    return sent + 1


def test_every_parameter_of_every_route(fuzz_app: Flask) -> None:
    """Each hostile value in each parameter a route reads, alone and repeated: 200 when
    the parameter accepts it, else 400 with a message. Unknown parameters are ignored
    (200), and an unknown dimension is 404 with a message. An accepted value that asks
    for the same view as one already sent is not sent again."""
    problems: list[str] = []
    send = sender(fuzz_app, problems)
    sent = 0
    for endpoint in routes(fuzz_app):
        url = route_url(endpoint)
        shown: set[tuple[str, str]] = set()
        for name in READS[endpoint]:
            for value in values_of(endpoint, name):
                ok = accepted(name, value.text)
                view = (name, value.text) if value.text else ("", "")
                if ok and view in shown:
                    continue
                shown.add(view)
                send(url, pairs_for(endpoint, name, value.raw), 200 if ok else 400)
                sent += 1
            if name in ("start", "end", "dates", "filter"):
                continue
            # A parameter given twice counts by its first value.
            good = quote(GOOD.get(name, ""), safe="")
            for bad in ("%C2%B2",) if endpoint != "overview" else ("%00", "%C2%B2"):
                ok = accepted(name, unquote(bad))
                send(url, [*pairs_for(endpoint, name, bad), (name, good)], 200 if ok else 400)
                send(url, [*pairs_for(endpoint, name, good), (name, bad)], 200)
                sent += 2
        for raw_name in NAMES if endpoint in ("overview", "api_stats") else NAMES[1:2]:
            send(url, [*pairs_for(endpoint, "x", "1"), (raw_name, "%00")], 200)
            sent += 1
        if "filter" in READS[endpoint]:
            sent += send_repeated_filters(endpoint, send)
    for dimension in (*BREAKDOWNS, "prop", "nope", "%00", "%ED%A0%80", "%C2%B2", "x" * 5000):
        expected = 200 if dimension in BREAKDOWNS else 404
        send(route_url("api_breakdown", dimension), [("limit", "3")], expected)
        send(route_url("api_breakdown", dimension), [("format", "csv")], expected)
        sent += 2
    for dimension in (*FILTER_DIMENSIONS, "prop:plan", "prop:", "nope", "%00", "x" * 5000):
        expected = 200 if filter_accepted(f"{unquote(dimension)}:is:x") else 404
        send(route_url("api_suggest", dimension), [("limit", "3")], expected)
        sent += 1
    assert problems == [], f"{len(problems)} of {sent} requests:\n" + "\n".join(problems[:40])


# -- several parameters at once (hypothesis) ------------------------------------------------------

FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PARAMETERS = (
    "period",
    "start",
    "end",
    "compare",
    "metric",
    "limit",
    "format",
    "path",
    "filter",
    "q",
    "x",
)
dates_text = st.dates(min_value=dt.date(1969, 1, 1)).map(dt.date.isoformat)
values = st.one_of(
    st.sampled_from(VALUES),
    st.text(max_size=30).map(as_sent),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(as_sent),
    dates_text.map(as_sent),
    st.integers(min_value=-(10**12), max_value=10**12).map(str).map(as_sent),
    st.sampled_from((*PERIODS, *COMPARES, *METRICS, *FORMATS, "/")).map(as_sent),
)
queries = st.lists(st.tuples(st.sampled_from(PARAMETERS), values), min_size=1, max_size=5)


@FUZZ
@given(endpoint=st.sampled_from(sorted(READS)), query=queries)
def test_mixed_parameters_never_fail(
    fuzz_app: Flask, endpoint: str, query: list[tuple[str, Sent]]
) -> None:
    """Several parameters at once, some repeated: 200, or 400 with a message."""
    problems: list[str] = []
    sender(fuzz_app, problems)(
        route_url(endpoint), [(name, value.raw) for name, value in query], None
    )
    assert problems == []


#: Filters built from arbitrary text: the value reaches SQL (LIKE, GLOB, IN).
filter_texts = st.builds(
    lambda dimension, op, alternatives: f"{dimension}:{op}:{'|'.join(alternatives)}",
    st.sampled_from((*FILTER_DIMENSIONS, "prop:plan", "nope")),
    st.sampled_from((*OPERATORS, "eq")),
    st.lists(st.text(max_size=12), min_size=1, max_size=3),
)


@settings(FUZZ, max_examples=20)
@given(filters=st.lists(filter_texts.map(as_sent), min_size=1, max_size=3))
def test_built_filters_never_fail(fuzz_app: Flask, filters: list[Sent]) -> None:
    """Well-formed filters answer 200 whatever their values hold, broken ones 400 with a
    message (a backslash escapes: only 'never 500' is checked then)."""
    texts = [f.text for f in filters]
    expected = None
    if not any("\\" in text for text in texts):
        expected = 200 if all(filter_accepted(text) for text in texts) else 400
    problems: list[str] = []
    pairs = [("filter", f.raw) for f in filters]
    sender(fuzz_app, problems)(route_url("api_breakdown"), pairs, expected)
    assert problems == []
