"""Model mixins and the factory that builds the extension's models on the host's ``db``.

Host apps extend the raw event table by subclassing :class:`EventMixin`::

    class Event(EventMixin, db.Model):
        plan = db.Column(db.String(32))

    analytics = Analytics(app, db=db, event_model=Event)

The archive model is derived from whatever event model is used, so custom columns are
archived too. Times are naive UTC ``DateTime`` values everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

#: A big integer primary key that SQLite still treats as its auto-incrementing rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Field length limits shared by validation and the columns.
NAME_MAX = 120
HOST_MAX = 255
PATH_MAX = 2000
URL_MAX = 2000
UTM_MAX = 255
LABEL_MAX = 64
#: A Flask endpoint name (``blueprint.view``).
ENDPOINT_MAX = 200
#: A major version ("131"), a language subtag ("en"), an ISO 3166-2 code ("DE-BE").
VERSION_MAX = 16
LANGUAGE_MAX = 8
REGION_MAX = 6
#: Revenue amounts: up to 12 digits before the point and 6 after (every currency's minor
#: unit has at most 4 digits; the two more hold unit prices such as 0.0035).
REVENUE_PRECISION = 18
REVENUE_SCALE = 6
#: The largest revenue amount a column holds is just below this.
REVENUE_LIMIT = Decimal(10) ** (REVENUE_PRECISION - REVENUE_SCALE)


class RevenueAmount(sa.types.TypeDecorator[Decimal]):
    """An exact decimal amount, ``NUMERIC(18, 6)``: never a float on any database.

    PostgreSQL stores it as ``NUMERIC(18, 6)``. SQLite has no exact decimal type (its
    NUMERIC keeps 15 significant digits as a binary float), so there the column is a
    ``BIGINT`` of millionths (``12.50`` is ``12500000``), exact and summed exactly by
    ``SUM``. Read through this type (a model's column, ``sa.func.sum(column)``, which
    keeps its argument's type), the values are ``Decimal`` on both databases; SQL that
    reads the column untyped gets millionths on SQLite. Values with more than 6 decimal
    places are rounded half away from zero, as PostgreSQL does; floats are refused.
    """

    impl = sa.Numeric(REVENUE_PRECISION, REVENUE_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(REVENUE_PRECISION, REVENUE_SCALE))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
            raise TypeError(f"a revenue amount must be a Decimal, not {type(value).__name__}")
        amount = Decimal(value)
        if not amount.is_finite() or abs(amount) >= REVENUE_LIMIT:
            raise ValueError(f"revenue amount {value!r} is out of range")
        if dialect.name != "sqlite":
            return amount
        return int(amount.scaleb(REVENUE_SCALE).to_integral_value(ROUND_HALF_UP))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(value).scaleb(-REVENUE_SCALE)
        return value if isinstance(value, Decimal) else Decimal(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EventMixin:
    """Columns of a raw analytics event (table ``analytics_event``)."""

    __tablename__ = "analytics_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Client or server UUID; unique so retries are idempotent.
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False, index=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX), nullable=False)
    hostname: Mapped[str] = mapped_column(sa.String(HOST_MAX), nullable=False)
    path: Mapped[str] = mapped_column(sa.String(PATH_MAX), nullable=False)
    referrer: Mapped[str | None] = mapped_column(sa.String(URL_MAX))
    referrer_host: Mapped[str | None] = mapped_column(sa.String(HOST_MAX))
    channel: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_term: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_content: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    device_type: Mapped[str | None] = mapped_column(sa.String(16))
    browser: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    os: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    #: Major versions of the browser and OS ("131"), digits only.
    browser_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))
    os_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))
    #: Primary subtag of the preferred Accept-Language entry, lower case ("en").
    language: Mapped[str | None] = mapped_column(sa.String(LANGUAGE_MAX))
    #: ISO 3166-2 subdivision ("DE-BE") and city name, with a City database only.
    region: Mapped[str | None] = mapped_column(sa.String(REGION_MAX))
    city: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    #: Screen-size class of ``screen_width`` (mobile, tablet, laptop, desktop).
    screen: Mapped[str | None] = mapped_column(sa.String(16))
    #: Keyed hash of anonymized IP + user agent + hostname with the day's salt (signed 64 bit).
    visitor_id: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    screen_width: Mapped[int | None] = mapped_column(sa.Integer())
    engagement_ms: Mapped[int | None] = mapped_column(sa.Integer())
    scroll_depth: Mapped[int | None] = mapped_column(sa.SmallInteger())
    #: Absent props are SQL NULL on every write path (never JSON ``null``).
    props: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    #: Revenue of the event (a purchase...): both set or both NULL. Amounts may be
    #: negative (refunds); the currency is an active ISO 4217 code.
    revenue_amount: Mapped[Decimal | None] = mapped_column(RevenueAmount())
    revenue_currency: Mapped[str | None] = mapped_column(sa.String(3))
    #: The Flask endpoint the path routes to on the host's ``url_map`` (``blog.post``);
    #: NULL when no rule matches.
    endpoint: Mapped[str | None] = mapped_column(sa.String(ENDPOINT_MAX))
    #: HTTP status of the page: server pageviews, and tracker pageviews of pages that
    #: say so (``analytics_script(status=404)``); NULL when unknown.
    status: Mapped[int | None] = mapped_column(sa.SmallInteger())
    #: Server pageviews: the app's response time in milliseconds (``before_request`` to
    #: ``after_request``); NULL for every other event.
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.hostname}{self.path} {self.created_at}>"


def _count(nullable: bool = False, sort_order: int = 0) -> Any:
    return mapped_column(sa.BigInteger(), nullable=nullable, default=0, sort_order=sort_order)


class _DailyMixin:
    # sort_order: the key columns come first in the table, before each table's own.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, sort_order=-2)
    date: Mapped[dt.date] = mapped_column(sa.Date(), nullable=False, index=True, sort_order=-1)


class DailySummaryMixin(_DailyMixin):
    __tablename__ = "analytics_daily_summary"
    visitors: Mapped[int] = _count()
    sessions: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()
    bounces: Mapped[int] = _count()
    total_duration_s: Mapped[int] = _count()
    events: Mapped[int] = _count()


class DailyPageMixin(_DailyMixin):
    """Pages (table ``analytics_daily_page``): subclass it to add key columns (see
    :data:`KEYED_TABLES`)."""

    __tablename__ = "analytics_daily_page"
    path: Mapped[str] = mapped_column(sa.String(PATH_MAX), nullable=False)
    visitors: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()
    entries: Mapped[int] = _count()
    exits: Mapped[int] = _count()
    total_engagement_ms: Mapped[int] = _count()


class DailyPageReferrerMixin(_DailyMixin):
    """Pageviews per page and referrer host (``analytics_daily_page_referrer``):
    subclass it to add key columns (see :data:`KEYED_TABLES`)."""

    __tablename__ = "analytics_daily_page_referrer"
    path: Mapped[str] = mapped_column(sa.String(PATH_MAX), nullable=False)
    referrer_host: Mapped[str | None] = mapped_column(sa.String(HOST_MAX))
    visitors: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()


class DailyTrafficSourceMixin(_DailyMixin):
    __tablename__ = "analytics_daily_traffic_source"
    channel: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    visitors: Mapped[int] = _count()
    sessions: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()
    bounces: Mapped[int] = _count()


class DailyCountryMixin(_DailyMixin):
    __tablename__ = "analytics_daily_country"
    country: Mapped[str | None] = mapped_column(sa.String(2))
    visitors: Mapped[int] = _count()
    sessions: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()


class DailyDeviceMixin(_DailyMixin):
    __tablename__ = "analytics_daily_device"
    device_type: Mapped[str | None] = mapped_column(sa.String(16))
    browser: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    os: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    visitors: Mapped[int] = _count()
    sessions: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()


class DailyUtmMixin(_DailyMixin):
    __tablename__ = "analytics_daily_utm"
    utm_source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_term: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_content: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    visitors: Mapped[int] = _count()
    sessions: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()
    bounces: Mapped[int] = _count()


class _VisitCountsMixin(_DailyMixin):
    """Counts of a table grouped by the sessions' landing attributes (after its keys)."""

    visitors: Mapped[int] = _count(sort_order=1)
    sessions: Mapped[int] = _count(sort_order=1)
    pageviews: Mapped[int] = _count(sort_order=1)


class DailyBrowserVersionMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_browser_version"
    browser: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    browser_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))


class DailyOsVersionMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_os_version"
    os: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    os_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))


class DailyLocationMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_location"
    country: Mapped[str | None] = mapped_column(sa.String(2))
    region: Mapped[str | None] = mapped_column(sa.String(REGION_MAX))
    city: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))


class DailyLanguageMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_language"
    language: Mapped[str | None] = mapped_column(sa.String(LANGUAGE_MAX))


class DailyScreenMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_screen"
    screen: Mapped[str | None] = mapped_column(sa.String(16))


class DailyHostnameMixin(_VisitCountsMixin):
    __tablename__ = "analytics_daily_hostname"
    hostname: Mapped[str | None] = mapped_column(sa.String(HOST_MAX))
    bounces: Mapped[int] = _count(sort_order=2)


class DailySessionMixin(_DailyMixin):
    __tablename__ = "analytics_daily_session"
    #: Lower bound (seconds) of the session's duration bucket.
    duration_bucket: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    #: Lower bound of the session's pageview-count bucket.
    pages_bucket: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    sessions: Mapped[int] = _count()
    total_duration_s: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()


class DailyEventMixin(_DailyMixin):
    """Custom events per name (``analytics_daily_event``): subclass it to add key
    columns (see :data:`KEYED_TABLES`)."""

    __tablename__ = "analytics_daily_event"
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX), nullable=False)
    visitors: Mapped[int] = _count()
    events: Mapped[int] = _count()


class DailyDimensionMixin(_DailyMixin):
    """Rollups of the custom dimensions declared with ``analytics.dimension(name)``.

    Event-level: ``visitors`` are the day's visitors with an event of that value,
    ``pageviews`` and ``events`` (non-pageview events) count the events carrying it.
    """

    __tablename__ = "analytics_daily_dimension"
    dimension: Mapped[str] = mapped_column(sa.String(LABEL_MAX), nullable=False)
    #: The column's value as text (NULL when the events did not carry one).
    value: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    visitors: Mapped[int] = _count()
    pageviews: Mapped[int] = _count()
    events: Mapped[int] = _count()


class DailyPageExperienceMixin(_DailyMixin):
    """Page experience of a day as an exact distribution (``core/experience.py``): per
    path and metric (time on page, scroll depth, a web vital), each distinct sample
    value with how many samples have it, so ranges sum counts and read percentiles
    exactly. Rows of metric ``visitors`` (``value`` NULL) count visitors with a pageview
    of ``path`` in ``samples`` (``path`` NULL: of any page; a run writes that row for any
    day with events, 0 included).
    """

    __tablename__ = "analytics_daily_page_experience"
    # Without the mixin's own index: (date, metric) below serves ranges of dates too.
    date: Mapped[dt.date] = mapped_column(sa.Date(), nullable=False, sort_order=-1)
    path: Mapped[str | None] = mapped_column(sa.String(PATH_MAX))
    metric: Mapped[str] = mapped_column(sa.String(LABEL_MAX), nullable=False)
    value: Mapped[float | None] = mapped_column(sa.Double())
    samples: Mapped[int] = _count()

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # Finds a day's visitor rows without reading its distribution.
        return (sa.Index(f"ix_{cls.__tablename__}_date_metric", "date", "metric"),)


class SessionMixin:
    """One session (visit) of an aggregated day: what filtered questions read.

    Written by the day's aggregation with the daily tables, from the same computation
    (``core.rollups.sessions_select``), so its rows add up to the daily summary. A
    session's events are the visitor's events between ``started_at`` and ``ended_at``
    (a visitor's sessions of a day never overlap). Landing attributes are those of the
    session's first pageview, else its first event.
    """

    __tablename__ = "analytics_session"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    date: Mapped[dt.date] = mapped_column(sa.Date(), nullable=False, index=True)
    visitor_id: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    #: Times (naive UTC) of the session's first and last event.
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)
    ended_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)
    duration_s: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    events: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    pageviews: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    bounce: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    entry_path: Mapped[str | None] = mapped_column(sa.String(PATH_MAX))
    exit_path: Mapped[str | None] = mapped_column(sa.String(PATH_MAX))
    hostname: Mapped[str | None] = mapped_column(sa.String(HOST_MAX))
    referrer_host: Mapped[str | None] = mapped_column(sa.String(HOST_MAX))
    channel: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_source: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_term: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    utm_content: Mapped[str | None] = mapped_column(sa.String(UTM_MAX))
    device_type: Mapped[str | None] = mapped_column(sa.String(16))
    browser: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    os: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    browser_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))
    os_version: Mapped[str | None] = mapped_column(sa.String(VERSION_MAX))
    language: Mapped[str | None] = mapped_column(sa.String(LANGUAGE_MAX))
    region: Mapped[str | None] = mapped_column(sa.String(REGION_MAX))
    city: Mapped[str | None] = mapped_column(sa.String(LABEL_MAX))
    screen: Mapped[str | None] = mapped_column(sa.String(16))


class SaltMixin:
    """A random daily salt: rotated at local midnight, deleted after 48 hours."""

    __tablename__ = "analytics_salt"
    date: Mapped[dt.date] = mapped_column(sa.Date(), primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)


class AggregationRunMixin:
    """One aggregation of one local day: what the dashboard's "data as of" reads."""

    __tablename__ = "analytics_aggregation_run"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    date: Mapped[dt.date] = mapped_column(sa.Date(), nullable=False, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime())
    #: Raw + archived events of the day the run read.
    source_events: Mapped[int | None] = mapped_column(sa.BigInteger())


#: Attribute name on ``Analytics`` -> mixin of each daily table.
DAILY_MIXINS: dict[str, type[_DailyMixin]] = {
    "DailySummary": DailySummaryMixin,
    "DailyPage": DailyPageMixin,
    "DailyPageReferrer": DailyPageReferrerMixin,
    "DailyTrafficSource": DailyTrafficSourceMixin,
    "DailyCountry": DailyCountryMixin,
    "DailyDevice": DailyDeviceMixin,
    "DailyUtm": DailyUtmMixin,
    "DailySession": DailySessionMixin,
    "DailyEvent": DailyEventMixin,
    "DailyBrowserVersion": DailyBrowserVersionMixin,
    "DailyOsVersion": DailyOsVersionMixin,
    "DailyLocation": DailyLocationMixin,
    "DailyLanguage": DailyLanguageMixin,
    "DailyScreen": DailyScreenMixin,
    "DailyHostname": DailyHostnameMixin,
}


#: Daily tables a host may add key columns to (custom event columns), with the counts
#: that then get a ``value_`` twin. These tables group events, so an event column is a
#: key like their own: a row per (date, its keys, the host's columns). The tables that
#: group sessions (traffic sources, countries, devices, UTM, session lengths, the
#: summary) cannot take one: a visit holds events with several values of a column.
#:
#: In a keyed table the built-in counts keep their meaning when summed over the host's
#: columns: additive counts (pageviews, events, engagement) are split by the events'
#: values, and each visitor (entry, exit) is counted in one row only, that of the
#: visitor's first event of the row's other keys that day (of the visit's entry or exit
#: pageview). Each ``value_`` twin is exact for its own row and is never summed across
#: values: ``value_visitors`` are the visitors with an event of the row's keys carrying
#: the row's values, ``value_entries`` / ``value_exits`` the visits entering / leaving
#: at the page that hold an event carrying them (DESIGN.md's filter definition).
KEYED_TABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "DailyPage": ("visitors", "entries", "exits"),
    "DailyPageReferrer": ("visitors",),
    "DailyEvent": ("visitors",),
}
#: Prefix of the exact-per-row twin of a count (``value_visitors``...).
VALUE_PREFIX: Final = "value_"
#: Key columns a host may add to one daily table.
MAX_KEY_COLUMNS: Final = 3


@dataclass(frozen=True)
class Models:
    """The resolved model classes of one ``Analytics`` instance."""

    Event: Any
    EventArchive: Any
    daily: dict[str, Any]
    DailyDimension: Any
    DailyPageExperience: Any
    Session: Any
    Salt: Any
    AggregationRun: Any
    #: Host key columns of each keyed daily table (``daily_models=``), by model name.
    keyed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ShareLink: Any = None
    ApiToken: Any = None
    Annotation: Any = None

    def key_columns(self) -> tuple[str, ...]:
        """Every event column some daily table is keyed by, once each."""
        return tuple(dict.fromkeys(c for cols in self.keyed.values() for c in cols))

    def builtin_columns(self, name: str) -> tuple[str, ...]:
        """The columns of daily table ``name`` but the host's keys and ``value_`` twins."""
        extra = {*self.keyed.get(name, ()), *(VALUE_PREFIX + c for c in KEYED_TABLES.get(name, ()))}
        table: sa.Table = self.daily[name].__table__
        return tuple(c.name for c in table.c if c.name not in extra)


def _model(db: Any, name: str, mixin: type, **attrs: Any) -> Any:
    return type(name, (mixin, db.Model), {"__module__": __name__, **attrs})


def archive_table(event_table: sa.Table, metadata: sa.MetaData) -> sa.Table:
    """Mirror of the event table (custom columns included) named ``analytics_event_archive``.

    Rows keep their ``id``, so the archive never renumbers what it receives.
    """
    columns = [
        sa.Column(
            col.name,
            col.type,
            primary_key=col.primary_key,
            nullable=col.nullable,
            unique=bool(col.unique),
            index=bool(col.index),
            autoincrement=False,
        )
        for col in event_table.columns
    ]
    return sa.Table("analytics_event_archive", metadata, *columns)


def _keyed_daily(
    event_table: sa.Table, daily_models: Sequence[Any]
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """The host's daily models by name, and their key columns; each keyed table gets
    its ``value_`` count columns (mapped on the model too)."""
    hosts: dict[str, Any] = {}
    keyed: dict[str, tuple[str, ...]] = {}
    for model in daily_models:
        name = next(
            (
                n
                for n, mixin in DAILY_MIXINS.items()
                if isinstance(model, type) and issubclass(model, mixin)
            ),
            None,
        )
        if name is None or not hasattr(model, "__table__"):
            raise TypeError(
                f"daily_models: {model!r} is not a db.Model subclass of a daily table's mixin "
                "(DailyPageMixin, DailyPageReferrerMixin or DailyEventMixin)."
            )
        if name not in KEYED_TABLES:
            raise TypeError(
                f"daily_models: {name} groups visits, which hold events with several values "
                f"of an event column; only {', '.join(KEYED_TABLES)} take key columns."
            )
        if name in hosts:
            raise TypeError(f"daily_models: two models for {name}.")
        table: sa.Table = model.__table__
        mixin = DAILY_MIXINS[name]
        wanted: str = getattr(mixin, "__tablename__")  # noqa: B009 (not on _DailyMixin)
        if table.name != wanted:
            raise TypeError(f"daily_models: {model.__name__}'s table must be {wanted!r}.")
        own = {"id", "date", *mixin.__annotations__}
        extra = tuple(c.name for c in table.c if c.name not in own)
        if not extra or len(extra) > MAX_KEY_COLUMNS:
            raise TypeError(
                f"daily_models: {model.__name__} adds 1 to {MAX_KEY_COLUMNS} columns to "
                f"{table.name}, not {len(extra)}."
            )
        for column in extra:
            source = event_table.c.get(column)
            if column in EventMixin.__annotations__ or source is None:
                raise TypeError(
                    f"daily_models: {model.__name__}.{column} is not a custom column of the "
                    "event model: a key column takes its values from the event column of "
                    "the same name."
                )
            if not isinstance(table.c[column].type, sa.String) or not isinstance(
                source.type, sa.String
            ):
                raise TypeError(
                    f"daily_models: {model.__name__}.{column} must be a string column, "
                    "on the event model too."
                )
        for count in KEYED_TABLES[name]:
            # A server default too: a migration adds the column to a table holding rows.
            twin = sa.Column(
                VALUE_PREFIX + count,
                sa.BigInteger(),
                nullable=False,
                default=0,
                server_default=sa.text("0"),
            )
            table.append_column(twin)
            sa.inspect(model).add_property(twin.name, twin)
        hosts[name] = model
        keyed[name] = extra
    return hosts, keyed


def build_models(db: Any, event_model: Any, daily_models: Sequence[Any] = ()) -> Models:
    """Create the extension's model classes on the host's Flask-SQLAlchemy ``db``.

    ``daily_models`` are the host's subclasses of keyed daily tables' mixins (see
    :data:`KEYED_TABLES`), used instead of the built-in ones."""
    if event_model is None:
        event_model = _model(db, "AnalyticsEvent", EventMixin)
    elif not (isinstance(event_model, type) and issubclass(event_model, EventMixin)):
        raise TypeError("event_model must be a db.Model subclass that includes EventMixin.")
    if event_model.__table__.name != EventMixin.__tablename__:
        raise TypeError(
            f"event_model's table must be named {EventMixin.__tablename__!r}, "
            f"not {event_model.__table__.name!r}."
        )
    # Archived rows keep their ids, so the event table must never hand an id out twice:
    # without AUTOINCREMENT SQLite reuses the ids of deleted (archived) rows. Set here
    # rather than in the mixin's __table_args__, which a host subclass may replace.
    event_model.__table__.dialect_options["sqlite"]["autoincrement"] = True
    archive = type(
        "AnalyticsEventArchive",
        (db.Model,),
        {
            "__module__": __name__,
            "__table__": archive_table(event_model.__table__, db.metadata),
        },
    )
    hosts, keyed = _keyed_daily(event_model.__table__, daily_models)
    daily = {
        attr: hosts.get(attr) or _model(db, f"Analytics{attr}", mixin)
        for attr, mixin in DAILY_MIXINS.items()
    }
    return Models(
        Event=event_model,
        EventArchive=archive,
        daily=daily,
        DailyDimension=_model(db, "AnalyticsDailyDimension", DailyDimensionMixin),
        DailyPageExperience=_model(db, "AnalyticsDailyPageExperience", DailyPageExperienceMixin),
        Session=_model(db, "AnalyticsSession", SessionMixin),
        Salt=_model(db, "AnalyticsSalt", SaltMixin),
        AggregationRun=_model(db, "AnalyticsAggregationRun", AggregationRunMixin),
        keyed=keyed,
        ShareLink=_model(db, "AnalyticsShareLink", ShareLinkMixin),
        ApiToken=_model(db, "AnalyticsApiToken", ApiTokenMixin),
        Annotation=_model(db, "AnalyticsAnnotation", AnnotationMixin),
    )


# -- access: share links, API tokens; annotations -----------------------------------------

#: Length of a stored token hash (SHA-256, hex).
TOKEN_HASH_LENGTH = 64
#: Longest name of a share link or API token, and longest annotation text.
ACCESS_NAME_MAX = 200
ANNOTATION_TEXT_MAX = 500


class _GrantMixin:
    """What share links and API tokens hold: the token's SHA-256 (never the token), a
    name, the scope it is limited to (JSON, see ``reports.scope``; NULL: everything)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(TOKEN_HASH_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(sa.String(ACCESS_NAME_MAX), nullable=False)
    scope: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime())


class ShareLinkMixin(_GrantMixin):
    """A read-only link to the dashboard (``/analytics/shared/<token>/``)."""

    __tablename__ = "analytics_share_link"
    expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime())


class ApiTokenMixin(_GrantMixin):
    """A bearer token for ``/analytics/api/*``, and when it was last used."""

    __tablename__ = "analytics_api_token"
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime())


class AnnotationMixin:
    """A note on a local date or a range of them (``end_date``), shown on every chart."""

    __tablename__ = "analytics_annotation"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    date: Mapped[dt.date] = mapped_column(sa.Date(), nullable=False, index=True)
    end_date: Mapped[dt.date | None] = mapped_column(sa.Date())
    text: Mapped[str] = mapped_column(sa.String(ANNOTATION_TEXT_MAX), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(), nullable=False)
