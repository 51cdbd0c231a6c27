"""The ingest pipeline: an ordered tuple of small named steps, as Plausible does it.

Each step looks at one :class:`Candidate` and either fills in fields or returns a
:class:`DropReason`. Dropped events are counted per reason for observability. The last
stage writes the surviving events in one ``INSERT`` that ignores duplicate event ids, or,
with ``ANALYTICS_INGEST_BUFFER = "redis"``, hands the collect endpoint's events to the
Redis buffer's sink, which a flusher writes in bulk. The pipeline never picks its
storage: the app's state hands it a sink (``ingest.sinks``).
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import signals
from ..errors import DropEvent
from ..models import ENDPOINT_MAX
from . import privacy
from .audience import primary_language, registrable_domain, screen_class
from .geo import UNKNOWN, Location, builtin_country, lookup_location, normalize_country
from .hosts import host_allowed, normalize_patterns
from .payload import IncomingEvent
from .referrer import Attribution, classify
from .useragent import UA_MAX, UserAgentInfo

if TYPE_CHECKING:
    from .context import IngestContext as Context
    from .ratelimit import RateCharge


class DropReason(str, enum.Enum):
    """Why an event was not recorded (sent back in ``X-Analytics-Dropped``)."""

    BOT = "bot"
    DNT = "dnt"
    EXCLUDED = "excluded"
    HOST_NOT_ALLOWED = "host_not_allowed"
    DUPLICATE = "duplicate"
    SPAM = "spam"

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class RequestInfo:
    """What the pipeline may know about the sender; lives only in memory."""

    ip: str | None = None
    user_agent: str | None = None
    dnt: bool = False
    country_header: str | None = None
    #: The request's Accept-Language header.
    accept_language: str | None = None
    #: Host the collect request was sent to (None for server-side ``track()``).
    request_host: str | None = None
    from_browser: bool = True
    request: Any = None
    #: What steps computed once for the whole request (shared by its events' copies).
    memo: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> RequestInfo:
        """A copy for one event (steps may change it), sharing the request's ``memo``;
        spelled out since ``dataclasses.replace`` costs several times more per event."""
        return RequestInfo(
            self.ip,
            self.user_agent,
            self.dnt,
            self.country_header,
            self.accept_language,
            self.request_host,
            self.from_browser,
            self.request,
            self.memo,
        )


@dataclass(slots=True)
class Candidate:
    """An event travelling through the pipeline."""

    incoming: IncomingEvent
    info: RequestInfo
    row: dict[str, Any] = field(default_factory=dict)
    ua: UserAgentInfo | None = None
    anon_ip: str = ""


#: A step returns None (go on) or why the event is dropped: a :class:`DropReason`, or the
#: reason an enrich hook named (``DropEvent("staff")``).
Step = Callable[["Context", Candidate], DropReason | str | None]


def drop_disallowed_host(state: Context, c: Candidate) -> DropReason | None:
    if not c.info.from_browser:
        return None
    # Both sides are normalized hostnames (ingest.hosts): the page URL's by validation,
    # the request's Host header by the collect endpoint, the setting's here.
    allowed = state.settings.allowed_hosts
    host = c.incoming.hostname
    if allowed is None:
        return None if host == c.info.request_host else DropReason.HOST_NOT_ALLOWED
    if host_allowed(host, normalize_patterns(allowed)):
        return None
    return DropReason.HOST_NOT_ALLOWED


def drop_bots(state: Context, c: Candidate) -> DropReason | None:
    ua = c.info.user_agent
    if ua is None and not c.info.from_browser:
        return None  # server-side events without a user agent are the host's own
    c.ua = state.parse_user_agent((ua or "")[:UA_MAX])
    return DropReason.BOT if c.ua.is_bot else None


def drop_dnt(state: Context, c: Candidate) -> DropReason | None:
    return DropReason.DNT if state.settings.respect_dnt and c.info.dnt else None


def drop_excluded_paths(state: Context, c: Candidate) -> DropReason | None:
    path = c.incoming.path
    for pattern in state.settings.excluded_paths:
        if path == pattern or fnmatch.fnmatchcase(path, pattern):
            return DropReason.EXCLUDED
    return None


def drop_excluded_ips(state: Context, c: Candidate) -> DropReason | None:
    networks = state.settings.excluded_networks
    if networks:
        addr = privacy.parse_ip(c.info.ip)
        if addr is not None and any(addr in net for net in networks):
            return DropReason.EXCLUDED
    return None


def anonymize_ip(state: Context, c: Candidate) -> DropReason | None:
    memo = c.info.memo
    anon_ip = memo.get("anon_ip")
    if anon_ip is None:
        anon_ip = memo["anon_ip"] = privacy.anonymize_ip(privacy.parse_ip(c.info.ip))
    c.anon_ip = anon_ip
    c.info.ip = None  # nothing after this step may see the full address
    return None


def put_geo(state: Context, c: Candidate) -> DropReason | None:
    # The configured database, else the CDN's header, else (with no database configured)
    # the built-in table; all see the anonymized address only. One answer per request.
    # Region and city come from a City database only.
    memo = c.info.memo
    location: Location | None = memo.get("location")
    if location is None:
        location = UNKNOWN
        reader = state.geo_reader
        if reader is not None:
            location = lookup_location(reader, c.anon_ip)
        if location.country is None:
            country = normalize_country(c.info.country_header)
            if country is None and reader is None and state.settings.builtin_countries:
                country = builtin_country(c.anon_ip)
            if country is not None:
                location = Location(country)
        memo["location"] = location
    row = c.row
    row["country"] = location.country
    row["region"] = location.region
    row["city"] = location.city
    return None


def put_user_agent(state: Context, c: Candidate) -> DropReason | None:
    ua = c.ua
    c.row["device_type"] = ua.device_type if ua else "other"
    c.row["browser"] = ua.browser if ua else None
    c.row["os"] = ua.os if ua else None
    c.row["browser_version"] = ua.browser_version if ua else None
    c.row["os_version"] = ua.os_version if ua else None
    return None


def put_language(state: Context, c: Candidate) -> DropReason | None:
    memo = c.info.memo
    if "language" not in memo:
        memo["language"] = primary_language(c.info.accept_language)
    c.row["language"] = memo["language"]
    return None


@functools.lru_cache(maxsize=4096)
def _classify(
    referrer: str | None,
    page_host: str,
    utm: tuple[tuple[str, str], ...],
    click_ids: frozenset[str],
) -> Attribution:
    # A pure function of its inputs, which repeat (internal pages, search engines).
    return classify(referrer=referrer, page_host=page_host, utm=dict(utm), click_ids=click_ids)


def put_referrer(state: Context, c: Candidate) -> DropReason | None:
    ev = c.incoming
    attribution = _classify(ev.referrer, ev.hostname, tuple(ev.utm.items()), ev.click_ids)
    c.row.update(
        referrer=attribution.referrer,
        referrer_host=attribution.referrer_host,
        source=attribution.source,
        channel=attribution.channel,
    )
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        c.row[key] = ev.utm.get(key)
    return None


def put_endpoint(state: Context, c: Candidate) -> DropReason | None:
    """The endpoint the page routes to; server pageviews bring the request's own."""
    if "endpoint" not in c.row:
        c.row["endpoint"] = state.match_endpoint(c.incoming.hostname, c.incoming.path)
    endpoint = c.row["endpoint"]
    if endpoint is not None and len(endpoint) > ENDPOINT_MAX:
        c.row["endpoint"] = endpoint[:ENDPOINT_MAX]  # a host's very long view name
    return None


def put_visitor_id(state: Context, c: Candidate) -> DropReason | None:
    ev = c.incoming
    salt = state.salts.salt_for(state.local_date(ev.created_at))
    ua = (c.info.user_agent or "")[:UA_MAX]
    host = ev.hostname
    if state.settings.visitor_host == "registrable_domain":
        host = registrable_domain(host)
    c.row["visitor_id"] = privacy.visitor_hash(salt, c.anon_ip, ua, host)
    return None


def put_page_event_id(state: Context, c: Candidate) -> DropReason | None:
    """A page with a server pageview: its event id is derived from the page's id and the
    visitor, so the server's pageview and the tracker's first pageview of that page load
    are one event, while a page a cache served to other visitors counts once for each."""
    page_id = c.incoming.page_id
    if page_id is not None:
        c.row["event_id"] = page_event_id(page_id, c.row["visitor_id"])
    return None


def page_event_id(page_id: str, visitor_id: int) -> str:
    """The event id of the pageview of page load ``page_id`` by ``visitor_id``."""
    return str(uuid.uuid5(uuid.UUID(page_id), str(visitor_id)))


def run_enrichers(state: Context, c: Candidate) -> str | None:
    """The host's ``@analytics.enrich`` hooks, in order; one raising ``DropEvent`` drops
    the event under the reason it names (the hooks after it do not run)."""
    for hook in state.hooks.enrichers:
        try:
            hook(c.row, c.info.request)
        except DropEvent as drop:
            return drop.reason
    return None


def drop_referrer_spam(state: Context, c: Candidate) -> DropReason | None:
    """Referrer spam: the referrer's host, or a domain above it, is on the spam list."""
    host = c.row.get("referrer_host")
    if not host or not state.spam_domains:
        return None
    labels = host.split(".")
    for i in range(len(labels) - 1):
        if ".".join(labels[i:]) in state.spam_domains:
            return DropReason.SPAM
    return None


#: The steps every event goes through, in order.
STEPS: tuple[Step, ...] = (
    drop_disallowed_host,
    drop_bots,
    drop_dnt,
    drop_excluded_paths,
    drop_excluded_ips,
    anonymize_ip,
    put_geo,
    put_user_agent,
    put_language,
    put_referrer,
    drop_referrer_spam,
    put_endpoint,
    put_visitor_id,
    put_page_event_id,
    run_enrichers,
)


@dataclass
class IngestResult:
    """What happened to the events of one request or ``track()`` call."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


def base_row(ev: IncomingEvent) -> dict[str, Any]:
    return {
        "event_id": ev.event_id,
        "created_at": ev.created_at,
        "name": ev.name,
        "hostname": ev.hostname,
        "path": ev.path,
        "screen_width": ev.screen_width,
        "screen": screen_class(ev.screen_width),
        "engagement_ms": ev.engagement_ms,
        "scroll_depth": ev.scroll_depth,
        "props": ev.props,
        **ev.extra,
    }


def process(
    state: Context,
    events: Sequence[IncomingEvent],
    info: RequestInfo,
    charge: RateCharge | None = None,
) -> IngestResult:
    """Run every step over ``events`` and write the survivors; returns what happened.

    With a ``charge`` the sink counts the request against the rate limit in the same
    round trip as its write; ``RateLimited`` when it is refused: nothing is stored,
    counted or signalled.
    """
    result = IngestResult()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    # Receivers are looked up once: a signal nobody listens to costs nothing per event.
    dropped_signal = bool(signals.event_dropped.receivers)
    # Sent once the sink has taken the request (a rate-limited one signals nothing).
    drops: list[tuple[dict[str, Any] | None, str]] = []
    for ev in events:
        if ev.event_id in seen:
            result.dropped[DropReason.DUPLICATE.value] += 1
            if dropped_signal:
                drops.append((None, DropReason.DUPLICATE.value))
            continue
        seen.add(ev.event_id)
        c = Candidate(incoming=ev, info=info.copy())
        c.row = base_row(ev)
        reason = None
        for step in state.steps:
            reason = step(state, c)
            if reason is not None:
                break
        if reason is not None:
            name = str(reason)  # a DropReason's value, or a hook's reason
            result.dropped[name] += 1
            if dropped_signal:
                drops.append((c.row, name))
        else:
            rows.append(c.row)
    if rows or charge is not None:
        # Browser events go to the app's sink (the Redis buffer when configured);
        # track() always writes directly, so it can return the stored event or None.
        sink = state.sink if info.from_browser else state.direct_sink
        written = sink.write(rows, charge) if charge is not None else sink.write(rows)
        for event, name in drops:
            signals.event_dropped.send(state.app, event=event, reason=name)
        drops = []
        result.stored.extend(written.stored)
        if written.duplicates:
            result.dropped[DropReason.DUPLICATE.value] += written.duplicates
            if dropped_signal:
                kept = {id(row) for row in written.stored}
                for row in rows:
                    if id(row) not in kept:
                        signals.event_dropped.send(
                            state.app, event=row, reason=DropReason.DUPLICATE.value
                        )
        if signals.event_recorded.receivers:
            for row in written.stored:
                signals.event_recorded.send(state.app, event=row)
    for event, name in drops:
        signals.event_dropped.send(state.app, event=event, reason=name)
    state.count_drops(result.dropped)
    return result
