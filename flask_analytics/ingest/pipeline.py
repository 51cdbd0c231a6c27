"""The ingest pipeline: an ordered tuple of small named steps, as Plausible does it.

Each step looks at one :class:`Candidate` and either fills in fields or returns a
:class:`DropReason`. Dropped events are counted per reason for observability. The last
stage writes the surviving events in one ``INSERT`` that ignores duplicate event ids, or,
with ``ANALYTICS_INGEST_BUFFER = "redis"``, appends the collect endpoint's events to the
Redis buffer that ``flask_analytics.buffer.flush`` writes in bulk.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..dialects import insert_ignore
from . import privacy
from .geo import lookup_country, normalize_country
from .insert import scalar_default
from .payload import IncomingEvent
from .referrer import Attribution, classify
from .useragent import UA_MAX, UserAgentInfo

if TYPE_CHECKING:
    from ..extension import AnalyticsState


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


Step = Callable[["AnalyticsState", Candidate], DropReason | None]


def drop_disallowed_host(state: AnalyticsState, c: Candidate) -> DropReason | None:
    if not c.info.from_browser:
        return None
    allowed = state.settings.allowed_hosts
    host = c.incoming.hostname
    if allowed is None:
        request_host = (c.info.request_host or "").lower()
        return None if host == request_host else DropReason.HOST_NOT_ALLOWED
    for pattern in allowed:
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return None
    return DropReason.HOST_NOT_ALLOWED


def drop_bots(state: AnalyticsState, c: Candidate) -> DropReason | None:
    ua = c.info.user_agent
    if ua is None and not c.info.from_browser:
        return None  # server-side events without a user agent are the host's own
    c.ua = state.parse_user_agent((ua or "")[:UA_MAX])
    return DropReason.BOT if c.ua.is_bot else None


def drop_dnt(state: AnalyticsState, c: Candidate) -> DropReason | None:
    return DropReason.DNT if state.settings.respect_dnt and c.info.dnt else None


def drop_excluded_paths(state: AnalyticsState, c: Candidate) -> DropReason | None:
    path = c.incoming.path
    for pattern in state.settings.excluded_paths:
        if path == pattern or fnmatch.fnmatchcase(path, pattern):
            return DropReason.EXCLUDED
    return None


def drop_excluded_ips(state: AnalyticsState, c: Candidate) -> DropReason | None:
    networks = state.settings.excluded_networks
    if networks:
        addr = privacy.parse_ip(c.info.ip)
        if addr is not None and any(addr in net for net in networks):
            return DropReason.EXCLUDED
    return None


def anonymize_ip(state: AnalyticsState, c: Candidate) -> DropReason | None:
    memo = c.info.memo
    anon_ip = memo.get("anon_ip")
    if anon_ip is None:
        anon_ip = memo["anon_ip"] = privacy.anonymize_ip(privacy.parse_ip(c.info.ip))
    c.anon_ip = anon_ip
    c.info.ip = None  # nothing after this step may see the full address
    return None


def put_geo(state: AnalyticsState, c: Candidate) -> DropReason | None:
    country = None
    if state.geo_reader is not None:
        country = lookup_country(state.geo_reader, c.anon_ip)
    if country is None and c.info.country_header:
        country = normalize_country(c.info.country_header)
    c.row["country"] = country
    return None


def put_user_agent(state: AnalyticsState, c: Candidate) -> DropReason | None:
    ua = c.ua
    c.row["device_type"] = ua.device_type if ua else "other"
    c.row["browser"] = ua.browser if ua else None
    c.row["os"] = ua.os if ua else None
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


def put_referrer(state: AnalyticsState, c: Candidate) -> DropReason | None:
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


def put_visitor_id(state: AnalyticsState, c: Candidate) -> DropReason | None:
    ev = c.incoming
    salt = state.salts.salt_for(state.local_date(ev.created_at))
    ua = (c.info.user_agent or "")[:UA_MAX]
    c.row["visitor_id"] = privacy.visitor_hash(salt, c.anon_ip, ua, ev.hostname)
    return None


def run_enrichers(state: AnalyticsState, c: Candidate) -> DropReason | None:
    for hook in state.enrichers:
        hook(c.row, c.info.request)
    return None


def drop_referrer_spam(state: AnalyticsState, c: Candidate) -> DropReason | None:
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
    put_referrer,
    drop_referrer_spam,
    put_visitor_id,
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
        "engagement_ms": ev.engagement_ms,
        "scroll_depth": ev.scroll_depth,
        "props": ev.props,
        **ev.extra,
    }


def process(
    state: AnalyticsState, events: Sequence[IncomingEvent], info: RequestInfo
) -> IngestResult:
    """Run every step over ``events`` and write the survivors; returns what happened."""
    result = IngestResult()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ev in events:
        if ev.event_id in seen:
            result.dropped[DropReason.DUPLICATE.value] += 1
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
            result.dropped[reason.value] += 1
        else:
            rows.append(c.row)
    if rows and state.buffer is not None and info.from_browser:
        # Browser events go through the Redis buffer when configured (None: Redis is
        # unreachable or full, write directly). track() always writes directly, so it
        # can return the stored event or None for a duplicate.
        from .. import buffer

        appended = buffer.append(state, rows)
        if appended is not None:
            seen_before = set(appended.duplicates)  # only with ANALYTICS_BUFFER_DEDUPE_TTL
            if seen_before:
                result.dropped[DropReason.DUPLICATE.value] += len(seen_before)
            result.stored.extend(row for i, row in enumerate(rows) if i not in seen_before)
            rows = []
    if rows:
        inserted = write(state, rows)
        for row in rows:
            if row["event_id"] in inserted:
                row["id"] = inserted[row["event_id"]]
                result.stored.append(row)
            else:
                result.dropped[DropReason.DUPLICATE.value] += 1
    state.count_drops(result.dropped)
    return result


def write(state: AnalyticsState, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert ``rows``, skipping event ids already stored; returns event_id -> id inserted."""
    table: sa.Table = state.models.Event.__table__
    engine = state.engine()
    inserter = state.inserter(engine)
    if inserter.supports(rows):
        return inserter.insert(rows)
    # A multi-row VALUES needs the same keys in every row: a key some rows lack gets the
    # column's scalar default (enrich hooks may fill custom columns for some rows only).
    keys = {key for row in rows for key in row if key in table.c and key != "id"}
    fallback = {key: scalar_default(table.c[key]) for key in keys}
    values = [{key: row.get(key, fallback[key]) for key in keys} for row in rows]
    stmt = insert_ignore(table, engine.dialect.name, ["event_id"]).returning(
        table.c.event_id, table.c.id
    )
    if len(values) <= engine.dialect.insertmanyvalues_page_size:
        # SQLAlchemy's "insertmanyvalues" turns this executemany into ONE multi-row
        # INSERT, atomic on its own: autocommit saves the BEGIN and COMMIT round trips.
        with state.autocommit_engine().connect() as conn:
            found = conn.execute(stmt, values).all()
    else:
        with engine.begin() as conn:
            found = conn.execute(stmt, values).all()
    return dict(found)
