"""Realistic demo traffic, recorded through the real ingest pipeline, then aggregated.

``generate(state, days=N, seed=S)`` simulates visits for the last N local days: daily
and weekly cycles, growth, search/social/referral/email/paid sources with real-looking
referrers and UTM campaigns, a country mix, real browser user agents on desktop, mobile
and tablet, some crawlers (dropped by the pipeline like real ones), custom events and
engagement. Event ids derive from the seed, so running it twice stores nothing twice:
when every event of the first day is stored already, it stops with
:class:`DemoDataExists`.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeVar

from ..errors import AnalyticsError
from . import pipeline
from .payload import IncomingEvent, split_url

if TYPE_CHECKING:
    from .context import IngestContext as Context

T = TypeVar("T")

PAGES = (
    ("/", 30), ("/pricing", 10), ("/features", 8), ("/docs", 7), ("/docs/install", 5),
    ("/docs/api", 4), ("/blog", 6), ("/blog/privacy-first-analytics", 6),
    ("/blog/cookieless-tracking-explained", 5), ("/blog/flask-tips", 4),
    ("/blog/postgres-rollups", 3), ("/about", 3), ("/signup", 5), ("/app#/dashboard", 3),
    ("/app#/settings", 1), ("/changelog", 2),
)  # fmt: skip

#: Paid plans' prices: the demo's purchases (revenue in two currencies).
PRICES: Final = {
    "pro": {"EUR": Decimal("12.00"), "USD": Decimal("13.00")},
    "team": {"EUR": Decimal("49.00"), "USD": Decimal("54.00")},
}

# (weight, referrer or None, utm query or "")
SOURCES = (
    (28, None, ""),
    (26, "https://www.google.com/", ""),
    (4, "https://www.bing.com/", ""),
    (3, "https://duckduckgo.com/", ""),
    (1, "https://www.ecosia.org/", ""),
    (5, "https://news.ycombinator.com/item?id=4242", ""),
    (5, "https://www.reddit.com/r/flask/comments/abc/", ""),
    (3, "https://t.co/x1y2z3", ""),
    (2, "https://l.facebook.com/", ""),
    (2, "https://www.linkedin.com/feed/", ""),
    (1, "https://mastodon.social/@someone", ""),
    (3, "https://github.com/pallets/flask", ""),
    (2, "https://dev.to/someone/post", ""),
    (2, "https://www.youtube.com/watch?v=abc", ""),
    (5, None, "utm_source=newsletter&utm_medium=email&utm_campaign=november-digest"),
    (4, "https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=flask+analytics"),
    (2, None, "utm_source=twitter&utm_medium=social&utm_campaign=launch-week"),
    (2, "https://blog.example.org/best-flask-extensions", ""),
)  # fmt: skip

COUNTRIES = (
    ("US", 30), ("DE", 11), ("GB", 8), ("FR", 7), ("IN", 7), ("CA", 5), ("NL", 4),
    ("BR", 4), ("ES", 3), ("SE", 3), ("JP", 3), ("AU", 3), ("PL", 2), ("IT", 2),
    ("CH", 2), ("NZ", 1), ("KR", 1), ("ZA", 1), ("MX", 1), ("NG", 1),
)  # fmt: skip

#: Accept-Language headers by country (others send English).
LANGUAGES = {
    "DE": "de-DE,de;q=0.9,en;q=0.8", "FR": "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
    "ES": "es-ES,es;q=0.9", "MX": "es-MX,es;q=0.9,en;q=0.5", "BR": "pt-BR,pt;q=0.9,en;q=0.8",
    "NL": "nl-NL,nl;q=0.9,en;q=0.8", "SE": "sv-SE,sv;q=0.9,en;q=0.8", "JP": "ja,en;q=0.5",
    "PL": "pl-PL,pl;q=0.9", "IT": "it-IT,it;q=0.9,en;q=0.6", "KR": "ko-KR,ko;q=0.9",
    "CH": "de-CH,de;q=0.9,fr;q=0.8,en;q=0.7", "IN": "en-IN,en;q=0.9,hi;q=0.8",
    "CA": "en-CA,en;q=0.9,fr-CA;q=0.8",
}  # fmt: skip
#: Share of visitors whose browser asks for English whatever their country.
ENGLISH_SHARE = 0.2
#: Subdomains of the demo site and their share of visits (the rest: the site itself).
SUBDOMAINS = (("blog", 0.12), ("docs", 0.08))
#: Older major versions still in use: (current, older ones), picked for a share of visitors.
OLDER_VERSIONS = {
    "Chrome/124": ("Chrome/123", "Chrome/122", "Chrome/109"),
    "Firefox/125": ("Firefox/115",),
}
OLDER_SHARE = 0.3

USER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 24),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 12),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 6),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 4),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", 6),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", 16),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 10),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 4),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", 3),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 1),
)  # fmt: skip

BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
)

SCREENS = {
    "desktop": (1280, 1440, 1536, 1920, 2560),
    "mobile": (375, 390, 393, 412, 430),
    "tablet": (768, 820, 1024),
}

#: Relative traffic per local hour (quiet nights, afternoon peak).
HOURS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 10, 10, 10, 9, 8, 8, 7, 6, 5, 4, 3)
#: Relative traffic per weekday, Monday first.
WEEKDAYS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.55, 0.6)


class DemoDataExists(AnalyticsError):
    """The demo events of this seed were recorded before (nothing was added)."""


@dataclass
class DemoResult:
    """What a demo run recorded."""

    #: First and last local day recorded: what to aggregate (the clock may pass local
    #: midnight while a long run records, so "today" afterwards may be the next day).
    first_day: dt.date
    last_day: dt.date
    days: int = 0
    visits: int = 0
    events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


def _weighted_choice(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    """One item of ``(item, weight)`` pairs, drawn in proportion to its weight."""
    return rng.choices([item for item, _ in weighted], [w for _, w in weighted])[0]


def _device_type(ua: str) -> str:
    """``desktop``, ``mobile`` or ``tablet`` for one of :data:`USER_AGENTS`."""
    return "tablet" if "iPad" in ua else "mobile" if "Mobile" in ua else "desktop"


def generate(
    state: Context,
    *,
    days: int,
    seed: int = 0,
    hostname: str = "localhost",
    visits_per_day: int = 120,
    now: dt.datetime | None = None,
    progress: Callable[[dt.date], None] | None = None,
) -> DemoResult:
    """Record ``days`` local days of demo traffic ending now; returns what was recorded.

    Timestamps never pass ``now`` (naive UTC, default the current time), so today is
    partial like a real today. Aggregating the days (``first_day`` to ``last_day`` of the
    result) is left to the caller.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    tz = state.settings.timezone
    now = now or state.clock.utcnow()
    today = now.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()
    result = DemoResult(first_day=today - dt.timedelta(days=days - 1), last_day=today)
    for offset in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=offset)
        # One generator per day: a day's traffic does not depend on how many days run.
        rng = random.Random(f"{seed}:{day.isoformat()}")
        growth = 1.0 + 0.6 * (1 - offset / max(days, 1))
        visits = int(visits_per_day * growth * WEEKDAYS[day.weekday()] * rng.uniform(0.85, 1.15))
        returning: list[tuple[str, str, str]] = []
        # Languages, subdomains and versions draw from their own generator, so the rest
        # of a day's traffic is what it was before they were added.
        audience = random.Random(f"{seed}:{day.isoformat()}:audience")
        for _ in range(visits):
            hour = rng.choices(range(24), HOURS)[0]
            local = dt.datetime.combine(
                day, dt.time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=tz
            )
            start = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
            if start > now:
                continue
            if returning and rng.random() < 0.15:
                ip, ua, country = rng.choice(returning)  # a second visit of the day
            else:
                ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                ua = _older(audience, _weighted_choice(rng, USER_AGENTS))
                country = _weighted_choice(rng, COUNTRIES)
                returning.append((ip, ua, country))
            host = _site_host(audience, hostname)
            events = _visit_events(rng, host, start, now, ua)
            info = pipeline.RequestInfo(
                ip=ip,
                user_agent=ua,
                country_header=country,
                accept_language=_accept_language(audience, country),
                request_host=host,
            )
            outcome = pipeline.process(state, events, info)
            result.visits += 1
            result.events += len(outcome.stored)
            result.dropped.update(outcome.dropped)
        for _ in range(max(1, visits // 12)):  # crawlers: dropped, as in production
            bot_time = dt.datetime.combine(
                day, dt.time(rng.randrange(24), rng.randrange(60)), tzinfo=tz
            )
            start = bot_time.astimezone(dt.timezone.utc).replace(tzinfo=None)
            if start <= now:
                events = [
                    _make_event(rng, hostname, _weighted_choice(rng, PAGES), start, "pageview")
                ]
                info = pipeline.RequestInfo(
                    ip="66.249.66.1", user_agent=rng.choice(BOTS), request_host=hostname
                )
                result.dropped.update(pipeline.process(state, events, info).dropped)
        if result.days == 0 and result.events == 0 and result.dropped["duplicate"]:
            raise DemoDataExists(
                f"the demo events of seed {seed} already exist (those of {day.isoformat()}, "
                "the first day, were recorded before): nothing was added. Use another seed "
                "for more demo traffic."
            )
        result.days += 1
        if progress is not None:
            progress(day)
    return result


def _older(rng: random.Random, ua: str) -> str:
    """``ua``, or for a share of visitors the same browser at an older major version."""
    for current, older in OLDER_VERSIONS.items():
        if current in ua and rng.random() < OLDER_SHARE:
            return ua.replace(current, rng.choice(older))
    return ua


def _site_host(rng: random.Random, hostname: str) -> str:
    """The demo site's host, or one of its :data:`SUBDOMAINS`."""
    draw = rng.random()
    for sub, share in SUBDOMAINS:
        if draw < share:
            return f"{sub}.{hostname}"
        draw -= share
    return hostname


def _accept_language(rng: random.Random, country: str) -> str:
    if rng.random() < ENGLISH_SHARE:
        return "en-US,en;q=0.9"
    return LANGUAGES.get(
        country, "en-GB,en;q=0.9" if country in ("GB", "AU", "NZ") else "en-US,en;q=0.9"
    )


def _make_event(
    rng: random.Random,
    hostname: str,
    path: str,
    at: dt.datetime,
    name: str,
    *,
    query: str = "",
    referrer: str | None = None,
    **fields: object,
) -> IncomingEvent:
    # A hash-routed page ("/app#/dashboard") keeps its query before the fragment, where
    # a browser sends it: "/app?utm_source=...#/dashboard".
    route, hash_mark, fragment = path.partition("#")
    url = f"https://{hostname}{route}" + (f"?{query}" if query else "") + hash_mark + fragment
    host, clean_path, utm, click_ids = split_url(url, "url", hash_routing=bool(hash_mark))
    event = IncomingEvent(
        name=name,
        hostname=host,
        path=clean_path,
        created_at=at,
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        referrer=referrer,
        utm=utm,
        click_ids=click_ids,
    )
    for key, value in fields.items():
        setattr(event, key, value)
    return event


def _visit_events(
    rng: random.Random, hostname: str, start: dt.datetime, now: dt.datetime, ua: str
) -> list[IncomingEvent]:
    """The events of one visit, as the tracker would send them."""
    weight, referrer, query = rng.choices(SOURCES, [s[0] for s in SOURCES])[0]
    del weight
    screen = rng.choice(SCREENS[_device_type(ua)])
    landing = _weighted_choice(rng, PAGES)
    pages = [landing]
    if rng.random() > 0.42:  # not a bounce: read on
        for _ in range(min(int(rng.expovariate(0.55)) + 1, 12)):
            pages.append(_weighted_choice(rng, PAGES))
    events: list[IncomingEvent] = []
    at = start
    for i, path in enumerate(pages):
        if at > now:
            break
        first = i == 0
        events.append(
            _make_event(
                rng,
                hostname,
                path,
                at,
                "pageview",
                query=query if first else "",
                referrer=referrer if first else None,
                screen_width=screen,
            )
        )
        stay = rng.lognormvariate(3.4, 1.0) if len(pages) > 1 else rng.lognormvariate(0.6, 1.1)
        stay = min(stay, 1500.0)
        if path == "/signup" and rng.random() < 0.35:
            events.append(
                _make_event(
                    rng,
                    hostname,
                    path,
                    at + dt.timedelta(seconds=stay * 0.8),
                    "form_submit",
                    props={"form": "signup"},
                )
            )
            plan = rng.choice(["free", "free", "pro", "team"])
            signed_up = at + dt.timedelta(seconds=stay * 0.8)
            events.append(
                _make_event(rng, hostname, path, signed_up, "signup", props={"plan": plan})
            )
            if plan in PRICES and rng.random() < 0.6:  # a paid plan, bought at once
                purchase = _make_event(
                    rng, hostname, path, signed_up, "purchase", props={"plan": plan}
                )
                currency = "USD" if rng.random() < 0.3 else "EUR"
                purchase.extra["revenue_amount"] = PRICES[plan][currency]
                purchase.extra["revenue_currency"] = currency
                events.append(purchase)
        if path.startswith("/docs") and rng.random() < 0.15:
            events.append(
                _make_event(
                    rng,
                    hostname,
                    path,
                    at + dt.timedelta(seconds=stay * 0.5),
                    "download",
                    props={"url": f"https://{hostname}/static/flask-analytics-guide.pdf"},
                )
            )
        if path.startswith("/blog/") and rng.random() < 0.2:
            events.append(
                _make_event(
                    rng,
                    hostname,
                    path,
                    at + dt.timedelta(seconds=stay * 0.6),
                    "outbound",
                    props={"url": "https://github.com/pallets/flask"},
                )
            )
        if stay >= 3:  # the tracker reports engagement after 3 s of visible time
            events.append(
                _make_event(
                    rng,
                    hostname,
                    path,
                    at + dt.timedelta(seconds=stay),
                    "engagement",
                    engagement_ms=int(stay * 1000),
                    scroll_depth=rng.randrange(10, 101),
                )
            )
        at += dt.timedelta(seconds=stay + rng.uniform(0.5, 3))
    return [e for e in events if e.created_at <= now]
