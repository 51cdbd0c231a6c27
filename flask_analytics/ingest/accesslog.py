"""Server access logs (combined log format) imported through the ingest pipeline.

Each line that is a page view (a ``GET`` answered 2xx, of a path that is not a static
file) becomes a ``pageview`` tracked with the line's time, client address, user agent and
referrer, so bots, excluded paths and networks, DNT-less anonymization and the visitor
hash apply as to collected events. Its event id is a UUID 5 of the line itself (and the
hostname), so importing the same file again, or overlapping files, adds nothing: the
pipeline drops the repeated ids as duplicates.

The time of a line is its own, with its offset, stored as UTC; the visitor hash uses the
salt of the event's local day, as for any event tracked with a past timestamp.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import InvalidEvent

#: ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`` (Apache and nginx's default).
COMBINED: Final = re.compile(
    r'(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}) (?:\d+|-)(?: "(?P<referrer>(?:[^"\\]|\\.)*)" '
    r'"(?P<agent>(?:[^"\\]|\\.)*)")?\s*$'
)
#: Paths ending so are files a page loads, not pages.
STATIC_SUFFIXES: Final = (
    ".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp",
    ".avif", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp4", ".webm", ".mp3",
    ".json", ".xml", ".txt", ".pdf", ".zip", ".gz",
)  # fmt: skip
#: The namespace of imported lines' event ids.
NAMESPACE: Final = uuid.UUID("6f1b8a52-3c1e-5b8e-9d1a-2f4c7e0a9b31")
_TIME_FORMAT: Final = "%d/%b/%Y:%H:%M:%S %z"


@dataclass(frozen=True)
class Hit:
    """One page view of a log line."""

    event_id: str
    created_at: dt.datetime  # naive UTC
    ip: str
    url: str
    referrer: str | None
    user_agent: str | None


@dataclass
class Imported:
    """What an import did: lines read, events stored, and why the others were not."""

    lines: int = 0
    stored: int = 0
    #: Lines that are not page views (assets, other methods and statuses).
    skipped: int = 0
    #: Lines that do not parse, or hold a value the pipeline refuses.
    invalid: int = 0
    #: Page views the pipeline did not store: duplicates (imported before), bots...
    dropped: int = 0
    first_errors: list[str] = field(default_factory=list)


def _unescape(text: str | None) -> str | None:
    if text is None or text in ("", "-"):
        return None
    return text.replace('\\"', '"').replace("\\\\", "\\")


def parse_line(line: str, hostname: str, scheme: str = "https") -> Hit | None:
    """The page view of one combined-log line on ``hostname``; None when the line is not
    one (an asset, a POST, a redirect...). Raises ``ValueError`` for a line that does
    not parse."""
    match = COMBINED.match(line.rstrip("\r\n"))
    if match is None:
        raise ValueError("not in the combined log format")
    method, _, rest = (match["request"] or "").partition(" ")
    target = rest.rsplit(" ", 1)[0] if " " in rest else rest
    status = int(match["status"])
    if method != "GET" or not 200 <= status < 300 or not target.startswith("/"):
        return None
    if urlsplit(target).path.lower().endswith(STATIC_SUFFIXES):
        return None
    moment = dt.datetime.strptime(match["time"], _TIME_FORMAT)
    created_at = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return Hit(
        event_id=str(uuid.uuid5(NAMESPACE, f"{hostname}\n{line.rstrip(chr(13) + chr(10))}")),
        created_at=created_at,
        ip=match["ip"],
        url=f"{scheme}://{hostname}{target}",
        referrer=_unescape(match["referrer"]),
        user_agent=_unescape(match["agent"]),
    )


#: ``track(name, *, url, referrer, ip, user_agent, timestamp, event_id)`` -> stored or None.
Track = Callable[..., Any]


def import_lines(
    track: Track, lines: Iterable[str], hostname: str, *, scheme: str = "https"
) -> Imported:
    """Track the page views of ``lines`` (see :func:`parse_line`) with ``track``: the
    extension's ``track``, handed in so this layer never imports it."""
    result = Imported()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        result.lines += 1
        try:
            hit = parse_line(line, hostname, scheme)
            if hit is None:
                result.skipped += 1
                continue
            stored = track(
                "pageview",
                url=hit.url,
                referrer=hit.referrer,
                ip=hit.ip,
                user_agent=hit.user_agent,
                timestamp=hit.created_at,
                event_id=hit.event_id,
            )
        except (ValueError, InvalidEvent) as error:
            result.invalid += 1
            if len(result.first_errors) < 5:
                result.first_errors.append(f"line {number}: {error}")
            continue
        if stored is None:
            result.dropped += 1
        else:
            result.stored += 1
    return result
