"""Breakdowns: which daily table and key column each one groups, the counts it sums, and
the rows they produce (counts plus the rates derived from them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from .filters import LABELS, MAX_PROP_KEY, PROP_PREFIX, BadFilter
from .props import PROP_TABLE
from .totals import ratio

#: Rates a breakdown row may carry: name -> (numerator, denominator, scale).
ROW_RATES: Final[Mapping[str, tuple[str, str, float]]] = {
    "bounce_rate": ("bounces", "sessions", 1.0),
    "views_per_session": ("pageviews", "sessions", 1.0),
    "exit_rate": ("exits", "pageviews", 1.0),
    "avg_engagement_s": ("total_engagement_ms", "pageviews", 0.001),
    "events_per_visitor": ("events", "visitors", 1.0),
}


@dataclass(frozen=True)
class Breakdown:
    """One breakdown: the daily table and key column it groups, the counts it sums.

    ``visitors`` is only offered where summing it over the grouped rows of one day cannot
    count a visitor twice (one key per visitor and day: page, country, device, event);
    acquisition breakdowns (channel, source, UTM) count visits instead, since one visitor
    can start sessions from several sources in a day.
    """

    name: str
    table: str
    key: str
    counts: tuple[str, ...]
    sort: str
    rates: tuple[str, ...] = ()
    #: Rows sorted by ``sort`` smallest first (default: largest first).
    ascending: bool = False
    #: Skip rows whose key is NULL (e.g. pageviews without a referrer).
    skip_null: bool = False
    #: Keep only keys where this count is above zero (entry and exit pages).
    positive: str | None = None
    #: Column equalities selecting the rows (a custom dimension's name).
    where: tuple[tuple[str, Any], ...] = ()
    #: Column header / panel title (custom dimensions carry the host's label).
    label: str = ""
    #: Read from raw events even unfiltered: no daily table holds it (screen widths).
    raw_only: bool = False
    #: Keys are whole numbers (stored as text in the rows they come from).
    numeric: bool = False
    #: A column grouped with ``key`` and carried by each row: a version is one browser's
    #: ("Chrome" and "131"), a city one country's.
    parent: str | None = None


#: The event column the ``screen`` breakdown groups (the width in CSS pixels the tracker
#: sends); no daily table holds it, so it is read from raw events.
SCREEN_COLUMN: Final = "screen_width"

_PAGE = ("visitors", "pageviews", "entries", "exits", "total_engagement_ms")
_ACQUISITION = ("sessions", "pageviews", "bounces")
_AUDIENCE = ("visitors", "sessions", "pageviews")

#: The built-in breakdowns by name, each labelled as the filter menu names it.
BREAKDOWNS: Final[Mapping[str, Breakdown]] = {
    d.name: replace(d, label=LABELS[d.name])
    for d in (
        Breakdown(
            "page", "DailyPage", "path", _PAGE, "visitors", ("avg_engagement_s",),
            positive="pageviews",
        ),
        Breakdown(
            "entry_page", "DailyPage", "path", ("entries", "visitors"), "entries",
            positive="entries",
        ),
        Breakdown(
            "exit_page", "DailyPage", "path", ("exits", "pageviews"), "exits", ("exit_rate",),
            positive="exits",
        ),
        Breakdown(
            "referrer", "DailyPageReferrer", "referrer_host", ("pageviews",), "pageviews",
            skip_null=True,
        ),
        Breakdown(
            "source", "DailyTrafficSource", "source", _ACQUISITION, "sessions",
            ("bounce_rate", "views_per_session"),
        ),
        Breakdown(
            "channel", "DailyTrafficSource", "channel", _ACQUISITION, "sessions",
            ("bounce_rate", "views_per_session"),
        ),
        Breakdown("country", "DailyCountry", "country", _AUDIENCE, "visitors"),
        Breakdown("device_type", "DailyDevice", "device_type", _AUDIENCE, "visitors"),
        Breakdown("browser", "DailyDevice", "browser", _AUDIENCE, "visitors"),
        Breakdown("os", "DailyDevice", "os", _AUDIENCE, "visitors"),
        *(
            Breakdown(
                utm, "DailyUtm", utm, _ACQUISITION, "sessions",
                ("bounce_rate", "views_per_session"), skip_null=True,
            )
            for utm in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
        ),
        Breakdown(
            "browser_version", "DailyBrowserVersion", "browser_version", _AUDIENCE, "visitors",
            parent="browser",
        ),
        Breakdown(
            "os_version", "DailyOsVersion", "os_version", _AUDIENCE, "visitors", parent="os"
        ),
        # Known regions and cities only, as Plausible lists them: without a City database
        # every visit's are unknown (one "Unknown" row per country, for cities).
        Breakdown("region", "DailyLocation", "region", _AUDIENCE, "visitors", skip_null=True),
        Breakdown(
            "city", "DailyLocation", "city", _AUDIENCE, "visitors", skip_null=True,
            parent="country",
        ),
        Breakdown("language", "DailyLanguage", "language", _AUDIENCE, "visitors"),
        Breakdown("screen", "DailyScreen", "screen", _AUDIENCE, "visitors"),
        Breakdown(
            "hostname", "DailyHostname", "hostname", (*_AUDIENCE, "bounces"), "visitors",
            ("bounce_rate", "views_per_session"),
        ),
        Breakdown(
            "event", "DailyEvent", "name", ("visitors", "events"), "visitors",
            ("events_per_visitor",),
        ),
    )
}  # fmt: skip

#: Screen widths in CSS pixels, read from raw events (no daily table holds them), grouped
#: like a custom dimension: event-level, visitors with an event of that width. Not in
#: :data:`BREAKDOWNS`, whose every entry the daily tables answer (``screen`` is the
#: rolled-up size classes).
SCREEN_WIDTH: Final = Breakdown(
    "screen_width", "DailyDimension", "value", ("visitors", "pageviews", "events"), "visitors",
    ("events_per_visitor",), where=(("dimension", SCREEN_COLUMN),), label="Screen width",
    raw_only=True, numeric=True,
)  # fmt: skip


#: The event column the ``endpoint`` breakdown groups (the Flask endpoint of the page).
ENDPOINT_COLUMN: Final = "endpoint"

#: Flask endpoints (``blog.post`` for every post), read from raw events and grouped like
#: a custom dimension: visitors with an event on that endpoint's pages, its pageviews and
#: other events. ``endpoint:is:NAME`` filters any report to its pages.
ENDPOINT: Final = Breakdown(
    "endpoint", "DailyDimension", "value", ("visitors", "pageviews", "events"), "visitors",
    ("events_per_visitor",), where=(("dimension", ENDPOINT_COLUMN),), label="Endpoint",
    raw_only=True,
)  # fmt: skip


def custom_breakdown(name: str, label: str = "") -> Breakdown:
    """The breakdown of a custom dimension declared with ``analytics.dimension(name)``.

    Its rollups are event-level (visitors with an event carrying the value), one row per
    value and day, so visitors add up over days like every other breakdown.
    """
    return Breakdown(
        name,
        "DailyDimension",
        "value",
        ("visitors", "pageviews", "events"),
        "visitors",
        ("events_per_visitor",),
        where=(("dimension", name),),
        label=label or name,
    )


def check_prop_key(key: str) -> str:
    """``key`` if a ``prop:KEY`` filter can name it (1 to :data:`~.filters.MAX_PROP_KEY`
    characters, no ``:`` and no control character), else :class:`~.filters.BadFilter`."""
    if (
        not key
        or len(key) > MAX_PROP_KEY
        or ":" in key
        or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in key)
    ):
        shown = key if len(key) <= 40 else key[:40] + "..."
        raise BadFilter(
            f"A property key is 1 to {MAX_PROP_KEY} characters without ':' or control "
            f"characters, not {shown!r}."
        )
    return key


def prop_breakdown(key: str) -> Breakdown:
    """The ``prop:KEY`` breakdown: event property ``key``'s values (NULL: events without
    it, shown as "(none)"), read from raw events. Like a custom dimension's: visitors with
    an event carrying the value (per day, summed), pageviews and other events. Raises
    :class:`~.filters.BadFilter` for a key :func:`check_prop_key` refuses."""
    return Breakdown(
        PROP_PREFIX + check_prop_key(key),
        PROP_TABLE,
        "value",
        ("visitors", "pageviews", "events"),
        "visitors",
        ("events_per_visitor",),
        where=(("prop", key),),
        label=f"Property {key}",
        raw_only=True,
    )


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: its key (None = unknown/direct), counts and rates, and
    the value of the breakdown's ``parent`` column when it has one."""

    key: Any
    counts: dict[str, int]
    rates: dict[str, float | None] = field(default_factory=dict)
    parent: Any = None

    def __getitem__(self, name: str) -> Any:
        if name in self.counts:
            return self.counts[name]
        return self.rates[name]


def row_with_rates(
    key: Any,
    counts: dict[str, int],
    rates: Sequence[str],
    sums: Mapping[str, int] | None = None,
    parent: Any = None,
) -> Row:
    """A row with ``rates`` derived from ``sums`` (default: its shown counts)."""
    source = counts if sums is None else sums
    derived = {}
    for name in rates:
        numerator, denominator, scale = ROW_RATES[name]
        derived[name] = ratio(source[numerator], source[denominator], scale)
    return Row(key, counts, derived, parent)
