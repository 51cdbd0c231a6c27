"""Filter parameters: ``DIMENSION:OP:VALUE`` parsed, escaped, refused with a message.

Pure values (no database): :func:`parse_filter` and :meth:`Filter.param` round trip for
any value (pipes, backslashes, colons, ``(none)``, non-ASCII), ``\\|`` and ``\\\\`` are
the only escapes, and every way a parameter can be wrong raises :class:`BadFilter` with a
message saying what is wrong.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_analytics.reports import BadFilter, Filter, parse_filter, parse_filters, with_filter
from flask_analytics.reports.filters import (
    EVENT_DIMENSIONS,
    MAX_ALTERNATIVES,
    MAX_FILTER_LENGTH,
    MAX_FILTERS,
    MAX_PROP_KEY,
    SESSION_DIMENSIONS,
    split_values,
)

CUSTOM = ("plan", "ab_variant")


# -- what parses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source:is:Google", Filter("source", "is", ("Google",))),
        ("country:is_not:FR|(none)", Filter("country", "is_not", ("FR", "(none)"))),
        ("page:matches:/blog/*", Filter("page", "matches", ("/blog/*",))),
        ("channel:contains:Search|Social", Filter("channel", "contains", ("Search", "Social"))),
        # Only the first two colons separate: the value keeps its own.
        ("page:is:/a:b:c", Filter("page", "is", ("/a:b:c",))),
        ("referrer:is:http://x.example:8080", Filter("referrer", "is", ("http://x.example:8080",))),
        # A property key ends at its first colon; the value may hold colons and pipes.
        ("prop:url:is:https://x.example/a", Filter("prop:url", "is", ("https://x.example/a",))),
        ("prop:note:contains:a:b\\|c", Filter("prop:note", "contains", ("a:b|c",))),
        ("prop:plan:is:(none)", Filter("prop:plan", "is", ("(none)",))),
        # Escapes: \| a pipe, \\ a backslash, any other backslash is kept as it is.
        ("utm_campaign:is:spring\\|summer", Filter("utm_campaign", "is", ("spring|summer",))),
        ("page:is:C:\\\\dir|x", Filter("page", "is", ("C:\\dir", "x"))),
        ("page:is:\\\\|\\|", Filter("page", "is", ("\\", "|"))),
        ("page:is:a\\nb", Filter("page", "is", ("a\\nb",))),
        ("page:is:end\\", Filter("page", "is", ("end\\",))),
        # Alternatives keep their order, duplicates dropped.
        ("os:is:iOS|Android|iOS", Filter("os", "is", ("iOS", "Android"))),
        # Spaces and non-ASCII are values like any other.
        ("country:is: FR ", Filter("country", "is", (" FR ",))),
        ("page:is:/café|/日本", Filter("page", "is", ("/café", "/日本"))),
        # Custom columns, when the event model has them.
        ("plan:is:pro", Filter("plan", "is", ("pro",))),
    ],
)
def test_parse(text: str, expected: Filter) -> None:
    parsed = parse_filter(text, CUSTOM)
    assert parsed == expected
    assert parse_filter(parsed.param(), CUSTOM) == parsed


def test_split_values() -> None:
    assert split_values("a|b") == ("a", "b")
    assert split_values("a\\|b") == ("a|b",)
    assert split_values("a\\\\|b") == ("a\\", "b")
    assert split_values("a\\\\\\|b") == ("a\\|b",)
    assert split_values("") == ("",)
    assert split_values("|") == ("", "")


def test_param_escapes_pipes_and_backslashes() -> None:
    item = Filter("page", "is", ("/a|b", "C:\\x", "\\|"))
    assert item.param() == "page:is:/a\\|b|C:\\\\x|\\\\\\|"
    assert parse_filter(item.param()) == item


def test_every_dimension_parses() -> None:
    for dimension in (*SESSION_DIMENSIONS, *EVENT_DIMENSIONS, *CUSTOM, "prop:k"):
        for op in ("is", "is_not", "contains", "matches"):
            item = parse_filter(f"{dimension}:{op}:x", CUSTOM)
            assert (item.dimension, item.op, item.values) == (dimension, op, ("x",))
            assert item.is_session == (dimension in SESSION_DIMENSIONS)


def test_prop_key_and_label() -> None:
    prop = parse_filter("prop:plan:is:pro|team")
    assert prop.prop_key == "plan"
    assert not prop.is_session
    assert prop.label == "Property plan is pro or team"
    country = parse_filter("country:is_not:FR|DE")
    assert country.prop_key is None
    assert country.label == "Country is not FR or DE"
    assert parse_filter("plan:matches:p*", CUSTOM).label == "plan matches p*"


# -- round trips -------------------------------------------------------------------------------

values = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
).filter(lambda v: v != "(none)")
dimensions = st.sampled_from(
    (*SESSION_DIMENSIONS, *EVENT_DIMENSIONS, *CUSTOM, "prop:plan", "prop:a-b_c.d")
)


@given(
    dimension=dimensions,
    op=st.sampled_from(("is", "is_not", "contains", "matches")),
    alternatives=st.lists(values, min_size=1, max_size=6, unique=True),
    none=st.booleans(),
)
def test_param_round_trips(dimension: str, op: str, alternatives: list[str], none: bool) -> None:
    if none and op in ("is", "is_not"):
        alternatives = [*alternatives, "(none)"]
    item = Filter(dimension, op, tuple(alternatives))
    text = item.param()
    assert parse_filter(text, CUSTOM) == item
    assert parse_filters([text, text], CUSTOM) == (item,)


@given(text=st.text(max_size=60))
def test_any_text_parses_or_says_why(text: str) -> None:
    item: Filter | None = None
    message = ""
    try:
        item = parse_filter(text, CUSTOM)
    except BadFilter as exc:
        message = str(exc)
    if item is None:
        assert message
    else:
        assert parse_filter(item.param(), CUSTOM) == item


# -- what is refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source", "DIMENSION:OP:VALUE"),
        ("", "DIMENSION:OP:VALUE"),
        ("nope:is:x", "Unknown filter dimension 'nope'"),
        ("Source:is:x", "Unknown filter dimension 'Source'"),
        ("plan:is:pro", "Unknown filter dimension 'plan'"),
        ("x" * 60 + ":is:x", "Unknown filter dimension '" + "x" * 40 + "...'"),
        ("source:Google", "needs an operator"),
        ("source:is", "needs an operator"),
        ("source:equals:x", "needs an operator: one of is, is_not, contains, matches"),
        ("source:IS:x", "needs an operator"),
        ("prop:plan", "prop:KEY:OP:VALUE"),
        ("prop::is:x", "prop:KEY:OP:VALUE"),
        ("prop:" + "k" * (MAX_PROP_KEY + 1) + ":is:x", f"KEY up to {MAX_PROP_KEY} characters"),
        # A key ends at its first colon, so "a:b" is key "a" with operator "b".
        ("prop:a:b:is:x", "needs an operator"),
        ("prop:plan:is", "needs an operator"),
        ("source:is:", "empty value"),
        ("source:is:a|", "empty value; use (none) for unknown"),
        ("source:is:|a", "empty value"),
        ("source:is:a||b", "empty value"),
        ("page:contains:(none)", "(none) goes with is or is_not, not with contains"),
        ("page:matches:/a|(none)", "(none) goes with is or is_not, not with matches"),
        ("source:is:a\x00b", "control character"),
        ("source:is:a\nb", "control character"),
        ("source:is:a\x7fb", "control character"),
        ("source:is:a\ud800b", "control character"),
        ("source\t:is:x", "control character"),
        ("source:is:" + "|".join(f"v{i}" for i in range(MAX_ALTERNATIVES + 1)), "at most 50"),
        ("page:is:/" + "a" * MAX_FILTER_LENGTH, f"at most {MAX_FILTER_LENGTH} characters"),
    ],
)
def test_bad_filters_say_why(text: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_limits_are_inclusive() -> None:
    key = "k" * MAX_PROP_KEY
    assert parse_filter(f"prop:{key}:is:x").prop_key == key
    many = [f"v{i}" for i in range(MAX_ALTERNATIVES)]
    assert parse_filter("source:is:" + "|".join(many)).values == tuple(many)
    # Alternatives count before duplicates are dropped.
    with pytest.raises(BadFilter, match="at most 50 alternatives"):
        parse_filter("source:is:" + "|".join(["a"] * (MAX_ALTERNATIVES + 1)))
    longest = "page:is:/" + "a" * (MAX_FILTER_LENGTH - len("page:is:/"))
    assert len(longest) == MAX_FILTER_LENGTH
    assert parse_filter(longest).values == (longest[len("page:is:") :],)
    filters = [f"page:is:/{i}" for i in range(MAX_FILTERS)]
    assert len(parse_filters(filters)) == MAX_FILTERS
    with pytest.raises(BadFilter, match=f"At most {MAX_FILTERS} filters"):
        parse_filters([*filters, "page:is:/x"])


def test_parse_filters_keeps_order_and_drops_duplicates() -> None:
    parsed = parse_filters(
        ["page:is:/a", "source:is:Google", "page:is:/a", "plan:is:pro"], custom=CUSTOM
    )
    assert [f.param() for f in parsed] == ["page:is:/a", "source:is:Google", "plan:is:pro"]
    # The same dimension twice with other values is two filters (both apply, AND).
    assert len(parse_filters(["page:is:/a", "page:is_not:/b"])) == 2
    with pytest.raises(BadFilter, match="Unknown filter dimension 'plan'"):
        parse_filters(["plan:is:pro"])


def test_with_filter_replaces_the_same_dimension() -> None:
    first = parse_filters(["source:is:Google", "page:is:/a", "country:is:FR"])
    added = parse_filter("page:matches:/blog/*")
    assert with_filter(first, added) == (first[0], first[2], added)
    other = parse_filter("prop:plan:is:pro")
    assert with_filter(first, other) == (*first, other)
