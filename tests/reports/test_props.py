"""``prop:KEY`` breakdowns and property keys (:meth:`Stats.prop_keys`) equal a plain-Python
count of the generated events (``tests/support/props.py``), unfiltered and filtered (an
event filter, a session filter, both, a property filter), over aggregated days (stored
sessions, one day archived), a live past day and today, on SQLite and PostgreSQL; each
value's row equals the totals of the filter a click on it adds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask

from flask_analytics.reports import (
    BadFilter,
    BadQuestion,
    DateRange,
    Filter,
    Query,
    Stats,
    parse_filters,
)
from flask_analytics.reports.breakdowns import prop_breakdown
from flask_analytics.state import current_state

from ..support.filter_reference import FilterSpec
from ..support.props import (
    DAYS,
    KEYS,
    LIVE_PAST,
    NOW,
    expected_keys,
    expected_values,
    props_app,
)

__all__ = ["props_app"]

#: The whole period, and the live days only.
RANGES = {"all days": DateRange(DAYS[0], DAYS[-1]), "live days": DateRange(LIVE_PAST, DAYS[-1])}
#: Cases also checked on the live days alone.
LIVE_CASES = ("unfiltered", "source and event")
#: name -> filters, as the reference takes them.
CASES: dict[str, tuple[FilterSpec, ...]] = {
    "unfiltered": (),
    "event is": (("event", "is", ("signup",)),),
    "source is": (("source", "is", ("Google",)),),
    "source and event": (("source", "is", ("Google",)), ("event", "is", ("signup", "purchase"))),
    "prop is": (("prop:plan", "is", ("pro",)),),
    "prop is with a pipe": (("prop:label", "is", ("a|b", "a\\|b")),),
}


def param(spec: FilterSpec) -> str:
    dimension, op, values = spec
    value = "|".join(v.replace("\\", "\\\\").replace("|", "\\|") for v in values)
    return f"{dimension}:{op}:{value}"


def open_stats(app: Flask, conn: Any, filters: tuple[FilterSpec, ...] = ()) -> Stats:
    parsed = parse_filters([param(s) for s in filters])
    assert [(f.dimension, f.op, f.values) for f in parsed] == list(filters)
    return Stats(current_state(app), conn, now=NOW, filters=parsed)


def order_key(row: Any) -> tuple[int, bool, str]:
    return (-row.counts["visitors"], row.key is None, row.key or "")


@pytest.mark.parametrize("case", list(CASES))
def test_breakdowns_and_keys_equal_the_reference(props_app: Flask, case: str) -> None:
    events = props_app.config["PROPS_EVENTS"]
    filters = CASES[case]
    mismatches = []
    nonempty = 0
    with props_app.app_context(), current_state(props_app).engine().connect() as conn:
        stats = open_stats(props_app, conn, filters)
        try:
            for label, rng in RANGES.items():
                if label == "live days" and case not in LIVE_CASES:
                    continue
                days = list(rng.dates())
                for key in KEYS:
                    rows = stats.breakdown(prop_breakdown(key), rng, limit=None)
                    got = {row.key: row.counts for row in rows}
                    expected = expected_values(events, key, days, filters)
                    nonempty += len(expected) > 1
                    if got != expected:
                        mismatches.append(f"{label}, {key}: expected {expected}, got {got}")
                    assert rows == sorted(rows, key=order_key), (label, key)
                    for row in rows:
                        assert row.rates["events_per_visitor"] == pytest.approx(
                            row.counts["events"] / row.counts["visitors"]
                        )
                keys, total = stats.prop_keys(rng, limit=None)
                assert dict(keys) == expected_keys(events, days, filters), label
                assert total == len(keys)
                assert [n for _, n in keys] == sorted((n for _, n in keys), reverse=True)
                signup, _ = stats.prop_keys(rng, event="signup", limit=3)
                wanted = expected_keys(events, days, filters, "signup")
                assert signup == sorted(wanted.items(), key=lambda i: (-i[1], i[0]))[:3], label
        finally:
            stats.close()
    assert not mismatches, "\n".join(mismatches)
    # Every key but "absent" has values unfiltered; filters leave fewer.
    assert nonempty >= (len(KEYS) - 1 if not filters else 4), nonempty


def test_a_value_row_equals_the_totals_of_its_filter(props_app: Flask) -> None:
    """A click on a row adds ``prop:KEY:is:VALUE`` (or ``(none)``): the filtered totals
    count the row's events, pageviews and visitors, whatever the value's type."""
    rng = RANGES["all days"]
    checked = 0
    with props_app.app_context(), current_state(props_app).engine().connect() as conn:
        for key in ("trial", "ключ", 'q"k'):
            stats = open_stats(props_app, conn)
            rows = stats.breakdown(prop_breakdown(key), rng, limit=None)
            stats.close()
            assert len(rows) >= 2, key
            for row in rows:
                value = "(none)" if row.key is None else row.key
                parsed = (Filter(f"prop:{key}", "is", (value,)),)
                filtered = Stats(current_state(props_app), conn, now=NOW, filters=parsed)
                try:
                    totals = filtered.totals(rng)
                finally:
                    filtered.close()
                got = {"visitors": totals.visitors, "pageviews": totals.pageviews}
                got["events"] = totals.events
                assert got == row.counts, (key, row.key)
                checked += 1
    assert checked >= 7


def test_pages_and_answer(props_app: Flask) -> None:
    rng = RANGES["all days"]
    breakdown = prop_breakdown("plan")
    with props_app.app_context(), current_state(props_app).engine().connect() as conn:
        stats = open_stats(props_app, conn, CASES["event is"])
        try:
            every, total = stats.breakdown_page(breakdown, rng, limit=None)
            assert total == len(every) >= 3
            page, page_total = stats.breakdown_page(breakdown, rng, limit=2, offset=1)
            assert page == every[1:3]
            assert page_total == total
            question = Query(rng, stats.filters, dimension="prop:plan", limit=2, order="events")
            answer = stats.answer(question, {})
            assert answer.breakdown is not None
            assert answer.breakdown.name == "prop:plan"
            assert answer.total == total
            by_events = sorted(every, key=lambda r: (-r.counts["events"], r.key is None, r.key))
            assert answer.rows == by_events[:2]
            for bad in ("prop:", "prop:a:b", f"prop:{'k' * 65}", "prop:a\x01"):
                with pytest.raises(BadQuestion):
                    stats.answer(Query(rng, stats.filters, dimension=bad), {})
        finally:
            stats.close()


@pytest.mark.parametrize("key", ["", "a:b", "k" * 65, "tab\there", "\x7f"])
def test_keys_a_filter_cannot_name_are_refused(key: str) -> None:
    with pytest.raises(BadFilter):
        prop_breakdown(key)


def test_a_range_without_raw_events_says_so(props_app: Flask) -> None:
    """Before the oldest raw event there are no numbers to read: no row, no key."""
    early = DateRange(DAYS[0] - dt.timedelta(days=30), DAYS[0] - dt.timedelta(days=20))
    with props_app.app_context(), current_state(props_app).engine().connect() as conn:
        stats = open_stats(props_app, conn)
        try:
            assert stats.breakdown(prop_breakdown("plan"), early) == []
            assert stats.prop_keys(early) == ([], 0)
        finally:
            stats.close()
