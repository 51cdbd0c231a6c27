"""Annotations (both databases): made, changed and deleted from the dashboard's forms
and the JSON API, each write checked for its CSRF token; shown over the columns they
touch on the overview's and a page's chart (escaped); never written through a share
link, an API token or a scoped viewer, and never shown to a scoped one."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from itsdangerous import URLSafeTimedSerializer

from flask_analytics import Analytics, Scope
from flask_analytics.access import SHARE, TOKEN, create_grant
from flask_analytics.state import current_state

from ..conftest import build_app, release_app
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_SCRIPT, insert, make_row

NOW = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 18)
WEEK = [TODAY - dt.timedelta(days=n) for n in range(6, -1, -1)]


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[tuple[Flask, dict[str, Any]]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(module_database_url, schemas, "annotations", SECRET_KEY="k" * 32)
        analytics: Analytics = app.extensions["analytics_test"]
        viewer: dict[str, Any] = {"access": True}
        analytics.dashboard_access(lambda: viewer["access"])
        with app.app_context():
            insert(analytics, [make_row(NOW.replace(tzinfo=None) - dt.timedelta(hours=1), 1)])
        yield app, viewer
        release_app(app, db, schemas)


@pytest.fixture
def client(site: tuple[Flask, dict[str, Any]]) -> Iterator[Any]:
    app, viewer = site
    viewer["access"] = True
    with time_machine.travel(NOW, tick=False):
        yield app.test_client()
    viewer["access"] = True
    with app.app_context(), current_state(app).engine().begin() as conn:
        conn.execute(sa.delete(current_state(app).models.Annotation.__table__))


def csrf(client: Any) -> str:
    page = client.get("/analytics/annotations").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def stored(app: Flask) -> list[tuple[dt.date, dt.date | None, str]]:
    with app.app_context(), current_state(app).engine().connect() as conn:
        table = current_state(app).models.Annotation.__table__
        rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    return [(r.date, r.end_date, r.text) for r in rows]


def test_forms_need_the_sessions_csrf_token(
    site: tuple[Flask, dict[str, Any]], client: Any
) -> None:
    app, _viewer = site
    token = csrf(client)
    form = {"date": str(WEEK[2]), "end_date": "", "text": "Launch"}
    assert client.post("/analytics/annotations", data=form).status_code == 400
    forged = URLSafeTimedSerializer("another key", salt="flask-analytics-csrf").dumps("x")
    assert (
        client.post("/analytics/annotations", data={**form, "csrf_token": forged}).status_code
        == 400
    )
    with time_machine.travel(NOW, tick=False):
        other = app.test_client()
        other_token = csrf(other)
    assert other_token != token
    # Another session's token does not fit this session (and the reverse).
    refused = client.post("/analytics/annotations", data={**form, "csrf_token": other_token})
    assert refused.status_code == 400
    assert stored(app) == []
    done = client.post("/analytics/annotations", data={**form, "csrf_token": token})
    assert done.status_code == 303
    assert stored(app) == [(WEEK[2], None, "Launch")]
    ident = re.search(
        r'data-annotation="(\d+)"', client.get("/analytics/annotations").get_data(as_text=True)
    )
    assert ident
    changed = {
        "date": str(WEEK[1]),
        "end_date": str(WEEK[3]),
        "text": XSS_SCRIPT,
        "csrf_token": token,
    }
    assert client.post(f"/analytics/annotations/{ident.group(1)}", data=changed).status_code == 303
    assert stored(app) == [(WEEK[1], WEEK[3], XSS_SCRIPT)]
    delete = f"/analytics/annotations/{ident.group(1)}/delete"
    assert client.post(delete, data={}).status_code == 400
    assert client.post(delete, data={"csrf_token": token}).status_code == 303
    assert stored(app) == []
    assert client.post(delete, data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"date": "2026-11-40", "text": "x"}, "not a valid date"),
        ({"date": "yesterday", "text": "x"}, "YYYY-MM-DD"),
        ({"date": "2026-11-10", "end_date": "2026-11-09", "text": "x"}, "before"),
        ({"date": "2026-11-10", "text": "  "}, "empty"),
        ({"date": "2026-11-10", "text": "x" * 501}, "at most 500"),
        ({"date": "2026-11-10", "text": "a\x00b"}, "control"),
    ],
)
def test_bad_annotations_answer_400(client: Any, form: dict[str, str], message: str) -> None:
    token = csrf(client)
    answer = client.post("/analytics/annotations", data={**form, "csrf_token": token})
    assert answer.status_code == 400
    assert message in html.unescape(answer.get_data(as_text=True))
    api = client.post("/analytics/api/annotations", json=form, headers={"X-CSRF-Token": token})
    assert api.status_code == 400
    assert message in api.get_json()["error"]


def test_the_api_reads_and_writes_with_the_token_header(
    site: tuple[Flask, dict[str, Any]], client: Any
) -> None:
    app, _viewer = site
    token = csrf(client)
    note = {"date": str(WEEK[0]), "end_date": str(WEEK[1]), "text": "Campaign"}
    assert client.post("/analytics/api/annotations", json=note).status_code == 400
    made = client.post("/analytics/api/annotations", json=note, headers={"X-CSRF-Token": token})
    assert made.status_code == 201
    ident = made.get_json()["id"]
    listed = client.get(f"/analytics/api/annotations?start={WEEK[1]}&end={TODAY}").get_json()
    assert listed["annotations"] == [{"id": ident, **note}]
    after = client.get(f"/analytics/api/annotations?start={WEEK[2]}&end={TODAY}").get_json()
    assert after["annotations"] == []
    url = f"/analytics/api/annotations/{ident}"
    assert client.put(url, json={**note, "text": "Sale"}).status_code == 400
    put = client.put(url, json={**note, "text": "Sale"}, headers={"X-CSRF-Token": token})
    assert put.get_json()["text"] == "Sale"
    assert stored(app) == [(WEEK[0], WEEK[1], "Sale")]
    assert client.delete(url).status_code == 400
    assert client.delete(url, headers={"X-CSRF-Token": token}).status_code == 204
    assert stored(app) == []


def chart_marks(page: str) -> list[tuple[str, float, float, str]]:
    return [
        (ident, float(x), float(width), html.unescape(title))
        for ident, title, x, width in re.findall(
            r'<g class="fa-chart__note" data-annotation="(\d+)"><title>([^<]*)</title>'
            r'<rect x="([0-9.]+)" y="0" width="([0-9.]+)"',
            page,
        )
    ]


def test_annotations_show_on_the_charts_they_touch(
    site: tuple[Flask, dict[str, Any]], client: Any
) -> None:
    _app, _viewer = site
    token = csrf(client)
    notes = [
        {"date": str(WEEK[2]), "text": XSS_SCRIPT},
        {"date": str(WEEK[0] - dt.timedelta(days=3)), "end_date": str(WEEK[1]), "text": "Sale"},
        {"date": str(WEEK[0] - dt.timedelta(days=9)), "text": "Too early"},
    ]
    ids = [
        client.post(
            "/analytics/api/annotations", json=n, headers={"X-CSRF-Token": token}
        ).get_json()["id"]
        for n in notes
    ]
    column = 1000 / 7
    for url in ("/analytics/?period=7d", "/analytics/pages/detail?period=7d&path=/"):
        page = client.get(url).get_data(as_text=True)
        assert XSS_SCRIPT not in page  # escaped wherever it is printed
        marks = chart_marks(page)
        assert [(m[0], round(m[1], 2), round(m[2], 2)) for m in marks] == [
            (str(ids[1]), 0.0, round(2 * column, 2)),  # WEEK[0]..WEEK[1], clipped to the chart
            (str(ids[0]), round(2 * column, 2), round(column, 2)),
        ]
        assert marks[1][3].endswith(f": {XSS_SCRIPT}")
        assert "Too early" not in page
    today = client.get("/analytics/?period=today").get_data(as_text=True)
    assert chart_marks(today) == []


def test_read_only_viewers_never_write_and_scoped_ones_see_none(
    site: tuple[Flask, dict[str, Any]], client: Any
) -> None:
    app, viewer = site
    token = csrf(client)
    note = {"date": str(TODAY), "text": "Deploy"}
    assert (
        client.post(
            "/analytics/api/annotations", json=note, headers={"X-CSRF-Token": token}
        ).status_code
        == 201
    )
    with app.app_context():
        shared = create_grant(current_state(app), SHARE, "link")[0]
        bearer = create_grant(current_state(app), TOKEN, "ci")[0]
    # A share link shows them, without forms, and has no write route.
    page = client.get(f"/analytics/shared/{shared}/annotations").get_data(as_text=True)
    assert "Deploy" in page
    assert "csrf_token" not in page
    assert client.post(
        f"/analytics/shared/{shared}/annotations", data={"csrf_token": token}
    ).status_code in (404, 405)
    # An API token reads them, and cannot write.
    auth = {"Authorization": f"Bearer {bearer}", "X-CSRF-Token": token}
    assert (
        len(
            client.get("/analytics/api/annotations?period=today", headers=auth).get_json()[
                "annotations"
            ]
        )
        == 1
    )
    assert client.post("/analytics/api/annotations", json=note, headers=auth).status_code == 403
    # A scoped viewer sees none and cannot write; nobody may without access.
    viewer["access"] = Scope(hostnames=["example.com"])
    assert client.get("/analytics/api/annotations?period=today").get_json()["annotations"] == []
    assert "Deploy" not in client.get("/analytics/?period=today").get_data(as_text=True)
    assert (
        client.post(
            "/analytics/api/annotations", json=note, headers={"X-CSRF-Token": token}
        ).status_code
        == 403
    )
    viewer["access"] = False
    assert (
        client.post("/analytics/annotations", data={**note, "csrf_token": token}).status_code == 403
    )
    assert len(stored(app)) == 1


def test_without_a_secret_key_the_page_lists_only(make_app: Any) -> None:
    app = make_app()
    app.secret_key = None
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    client = app.test_client()
    page = client.get("/analytics/annotations")
    assert page.status_code == 200
    assert "data-annotations-need-secret-key" in page.get_data(as_text=True)
    assert "csrf_token" not in page.get_data(as_text=True)
    answer = client.post("/analytics/api/annotations", json={"date": "2026-01-01", "text": "x"})
    assert answer.status_code == 400
    assert "SECRET_KEY" in answer.get_json()["error"]
