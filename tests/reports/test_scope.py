"""``Scope``: checked when made, stored as JSON, turned into the filters it stands for."""

from __future__ import annotations

import pytest

from flask_analytics import Scope
from flask_analytics.reports import BadFilter, Filter


def test_a_scope_is_its_filters() -> None:
    scope = Scope(
        hostnames=["Shop.Example.com."],
        path_prefixes=["/a|b/"],
        filters=["source:is:Google", "goal:is:Signup"],
    )
    assert scope.as_filters(goals=["Signup"]) == (
        Filter("hostname", "is", ("shop.example.com",)),
        Filter("page", "matches", ("/a|b/*",)),
        Filter("entry_page", "matches", ("/a|b/*",)),
        Filter("exit_page", "matches", ("/a|b/*",)),
        Filter("source", "is", ("Google",)),
        Filter("goal", "is", ("Signup",)),
    )
    assert Scope.from_json(scope.to_json()) == scope
    assert Scope().as_filters() == ()
    assert scope.describe().startswith("hostnames=shop.example.com paths=/a|b/ filters=")


def test_an_empty_list_matches_nothing() -> None:
    for scope in (Scope(hostnames=[]), Scope(path_prefixes=[], hostnames=["a.com"])):
        hostname = {f.op: f for f in scope.as_filters()}
        assert set(hostname) == {"is", "is_not"}  # (none) and not (none): nothing passes
        assert hostname["is"].values == hostname["is_not"].values == ("(none)",)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"hostnames": "a.com"}, TypeError),
        ({"path_prefixes": ["shop/"]}, ValueError),
        ({"path_prefixes": ["/shop/*"]}, ValueError),
        ({"hostnames": [" "]}, ValueError),
        ({"filters": ["source:equals:Google"]}, BadFilter),
        ({"filters": "source:is:Google"}, TypeError),
    ],
)
def test_bad_scopes_are_refused_when_made(arguments: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        Scope(**arguments)  # type: ignore[arg-type]


def test_the_app_checks_dimensions_and_goals() -> None:
    scope = Scope(filters=["plan:is:pro", "goal:is:Signup"])
    with pytest.raises(BadFilter):
        scope.as_filters()
    assert len(scope.as_filters(custom=["plan"], goals=["Signup"])) == 2
