"""flask_analytics.helpers.exclude_users: staff visits are not counted (Flask-Login)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import signals
from flask_analytics.helpers import exclude_users

from .conftest import DESKTOP_UA, collect_payload

flask_login = pytest.importorskip(
    "flask_login", reason="Flask-Login is in the dev extra: pip install -e '.[dev]'"
)


class User(flask_login.UserMixin):
    def __init__(self, user_id: str, is_admin: bool) -> None:
        self.id = user_id
        self.is_admin = is_admin


USERS = {"ada": User("ada", is_admin=True), "bob": User("bob", is_admin=False)}


def with_login(app: Flask) -> Flask:
    manager = flask_login.LoginManager()
    manager.init_app(app)
    manager.user_loader(USERS.get)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        flask_login.login_user(USERS[name])
        return "ok"

    @app.post("/signup")
    def signup() -> str:
        # A server-side event tracked while the request's user is logged in.
        analytics = app.extensions["analytics_test"]
        event = analytics.track("signup", url="https://example.com/signup")
        return "dropped" if event is None else "stored"

    return app


def stored(app: Flask) -> list[tuple[str, str]]:
    ext = app.extensions["analytics_test"]
    with app.app_context():
        rows = ext.db.session.execute(sa.select(ext.Event.name, ext.Event.path)).all()
    return sorted((name, path) for name, path in rows)


def test_staff_are_excluded_users_and_anonymous_visitors_counted(make_app):
    app = with_login(make_app())
    analytics = app.extensions["analytics_test"]
    analytics.enrich(exclude_users(lambda user: user.is_admin))
    dropped = []

    def on_dropped(sender, event, reason):
        dropped.append((reason, event["path"]))

    def visit(client, path):
        answer = client.post(
            "/_analytics/collect",
            json=collect_payload(url=f"http://localhost{path}"),
            headers={"User-Agent": DESKTOP_UA},
        )
        assert answer.status_code == 202
        return answer.get_json()["dropped"], client.post("/signup").text

    admin, user, anonymous = app.test_client(), app.test_client(), app.test_client()
    admin.post("/login/ada")
    user.post("/login/bob")
    with signals.event_dropped.connected_to(on_dropped, sender=app):
        assert visit(admin, "/admin-page") == ({"staff": 1}, "dropped")
        assert visit(user, "/user-page") == ({}, "stored")
        assert visit(anonymous, "/anonymous-page") == ({}, "stored")
        with app.app_context():  # no request: nobody is logged in
            assert analytics.track("import", url="https://example.com/import") is not None
    assert stored(app) == [
        ("import", "/import"),
        ("pageview", "/anonymous-page"),
        ("pageview", "/user-page"),
        ("signup", "/signup"),
        ("signup", "/signup"),
    ]
    assert dropped == [("staff", "/admin-page"), ("staff", "/signup")]


def test_a_bad_reason_fails_when_the_hook_is_made():
    with pytest.raises(ValueError, match="DropEvent reason"):
        exclude_users(lambda user: True, reason="Staff members")


def test_without_a_login_manager_the_hook_says_what_is_missing(app):
    hook = exclude_users(lambda user: True)
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="LoginManager"):
        hook({}, object())
