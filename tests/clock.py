"""The tests' one frozen clock: time-machine travels to pinned instants.

The package reads every "now" through its clock (``datetime.now``), which time-machine
moves, so a test that reads "now" once and then asks the app for "today" can no longer
race local midnight. This plugin (registered from ``tests/conftest.py``) offers:

- ``frozen_clock``: a fixture that freezes time (at the test's pinned instant, the
  ``--frozen-at`` instant, or else the real now) and hands the test a :class:`FrozenClock`
  to read and move it;
- ``@pytest.mark.clock``: a clock-sensitive test, run once per instant of :data:`PINNED`
  (``-m clock`` runs just those). ``@pytest.mark.clock(tick=True)`` lets time flow from
  the instant, for a test that waits on time;
- ``--frozen-at=INSTANT``: the whole selected suite runs frozen at one instant (ISO 8601
  with an offset, e.g. ``2027-02-28T22:59:59Z``, or a name of :data:`PINNED`). Tests whose
  clock is not ours skip under it: those marked ``real_clock(reason)`` and those marked
  ``browser`` (chromium keeps its own clock).

``time.monotonic`` and ``time.perf_counter`` are not moved, so timeouts and caches that
measure durations keep working under a frozen clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import time_machine

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """An aware UTC instant from ISO 8601 text that names its offset (``Z`` or ``+hh:mm``)."""
    instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{text!r} has no offset: write it as UTC, e.g. {text}Z")
    return instant.astimezone(UTC)


def local_midnight(zone: str, day: dt.date) -> dt.datetime:
    """The aware UTC instant of local midnight starting ``day`` in ``zone``."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def offset_change(zone: str, year: int, month: int) -> dt.datetime:
    """The first UTC instant of ``zone``'s new UTC offset in ``month`` (a DST change)."""
    tz = ZoneInfo(zone)
    hour = dt.datetime(year, month, 1, tzinfo=UTC)
    before = hour.astimezone(tz).utcoffset()
    while hour.month == month:
        hour += dt.timedelta(hours=1)
        if hour.astimezone(tz).utcoffset() != before:
            return hour
    raise ValueError(f"{zone} changes no offset in {year}-{month:02d}")


def pinned_instants(year: int) -> dict[str, dt.datetime]:
    """Instants around the edges that "today" depends on, in the zones the tests use: a
    second before and at local midnight in UTC and New York (a year end), Kiritimati and
    Adak (UTC+14 and UTC-10 share a midnight at 10:00 UTC in winter) and Paris (a month
    end, February to March), and the first second of each DST change of Paris and New York
    (a 23- or 25-hour day)."""
    second = dt.timedelta(seconds=1)
    new_year = dt.date(year + 1, 1, 1)
    edges = {
        "utc-midnight": local_midnight("UTC", new_year),
        "new-york-midnight": local_midnight("America/New_York", new_year),
        "kiritimati-adak-midnight": local_midnight("America/Adak", new_year),
        "paris-midnight": local_midnight("Europe/Paris", dt.date(year, 3, 1)),
    }
    instants: dict[str, dt.datetime] = {}
    for name, instant in edges.items():
        instants[f"{name}-before"] = instant - second
        instants[name] = instant
    instants["paris-spring-forward"] = offset_change("Europe/Paris", year, 3)
    instants["paris-fall-back"] = offset_change("Europe/Paris", year, 10)
    instants["new-york-spring-forward"] = offset_change("America/New_York", year, 3)
    instants["new-york-fall-back"] = offset_change("America/New_York", year, 11)
    return instants


#: The pinned instants, all in the year after the real one, so that they stay ahead of
#: the machine's date: the Redis server keeps expiries (``EXAT``) with its own clock. Each
#: clock-marked test runs at every one, so the list stays short.
PINNED: dict[str, dt.datetime] = pinned_instants(dt.datetime.now(UTC).year + 1)

#: Why a ``browser`` test skips under ``--frozen-at``.
BROWSER_CLOCK = "a real browser keeps its own clock, not the frozen one"


class FrozenClock:
    """A test's handle on the frozen time: read it once, move it on purpose."""

    def __init__(self, traveller: time_machine.Traveller, instant: dt.datetime) -> None:
        self._traveller = traveller
        #: Where the test's time started (aware UTC).
        self.instant = instant

    def now(self) -> dt.datetime:
        """The current (frozen) time, aware UTC, as the app's clock reads it."""
        return dt.datetime.now(UTC)

    def utcnow(self) -> dt.datetime:
        """The current time as naive UTC, the form stored times take."""
        return self.now().replace(tzinfo=None)

    def today(self, tz: dt.tzinfo) -> dt.date:
        """The current local date in ``tz``."""
        return self.now().astimezone(tz).date()

    def shift(self, delta: dt.timedelta | float) -> None:
        """Move time by ``delta`` (seconds when a number)."""
        self._traveller.shift(delta)

    def move_to(self, instant: dt.datetime) -> None:
        """Move time to the aware ``instant``."""
        if instant.tzinfo is None:
            raise ValueError("move_to() needs an aware instant (naive times are ambiguous)")
        self._traveller.move_to(instant)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--frozen-at",
        metavar="INSTANT",
        default=None,
        help=(
            "run the selected tests with time frozen at INSTANT (ISO 8601 with an offset, "
            f"e.g. 2027-02-28T22:59:59Z, or one of: {', '.join(PINNED)}); "
            "tests whose clock is not ours skip"
        ),
    )


def frozen_at(config: pytest.Config) -> dt.datetime | None:
    """The ``--frozen-at`` instant, or None."""
    value: str | None = config.getoption("--frozen-at")
    if value is None:
        return None
    if value in PINNED:
        return PINNED[value]
    try:
        return at(value)
    except ValueError as exc:
        raise pytest.UsageError(f"--frozen-at={value}: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    frozen_at(config)  # a bad value fails before collection
    config.addinivalue_line(
        "markers",
        "clock(tick=False): clock-sensitive; runs once per pinned instant (tests/clock.py), "
        "or at --frozen-at; tick=True lets time flow from there",
    )
    config.addinivalue_line(
        "markers",
        "real_clock(reason): reads another process's clock; skipped under --frozen-at",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("clock") is None:
        return
    if frozen_at(metafunc.config) is not None:
        return
    metafunc.parametrize("pinned_instant", list(PINNED.values()), ids=list(PINNED), indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if frozen_at(config) is None:
        return
    for item in items:
        marker = item.get_closest_marker("real_clock")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"--frozen-at: {reason}"))
        elif item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=f"--frozen-at: {BROWSER_CLOCK}"))


def ticks(request: pytest.FixtureRequest) -> bool:
    """Whether the test lets time flow (``clock(tick=True)``)."""
    marker = request.node.get_closest_marker("clock")
    return bool(marker is not None and marker.kwargs.get("tick", False))


@pytest.fixture(autouse=True)
def pinned_instant(request: pytest.FixtureRequest) -> Iterator[FrozenClock | None]:
    """Travel to the test's pinned instant (or ``--frozen-at``) for the whole test, its
    other fixtures' setup and teardown included (autouse fixtures are set up first); None
    when the test runs on the real clock."""
    instant: dt.datetime | None = getattr(request, "param", None)
    if instant is None and request.node.get_closest_marker("real_clock") is None:
        instant = frozen_at(request.config)
    if instant is None:
        yield None
        return
    with time_machine.travel(instant, tick=ticks(request)) as traveller:
        yield FrozenClock(traveller, instant)


@pytest.fixture
def frozen_clock(
    request: pytest.FixtureRequest, pinned_instant: FrozenClock | None
) -> Iterator[FrozenClock]:
    """The test's frozen time: its pinned instant, ``--frozen-at``, or else the real now."""
    if pinned_instant is not None:
        yield pinned_instant
        return
    now = dt.datetime.now(UTC)
    with time_machine.travel(now, tick=ticks(request)) as traveller:
        yield FrozenClock(traveller, now)
