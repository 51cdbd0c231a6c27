"""Hostnames and routed fragments at the collect endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from ..conftest import DESKTOP_UA, all_rows, build_app, collect_payload, release_app


@pytest.fixture(scope="module")
def site(module_database_url, schemas) -> Iterator[Flask]:
    app, db = build_app(
        module_database_url,
        schemas,
        "hosts",
        ANALYTICS_ALLOWED_HOSTS=["*.Probe.Test.", "localhost", "x.com"],
        ANALYTICS_RATE_LIMIT=None,
    )
    yield app
    release_app(app, db, schemas)


def post(app: Flask, body, host: str = "localhost"):
    return app.test_client().post(
        "/_analytics/collect",
        data=json.dumps(body),
        content_type="application/json",
        headers={"User-Agent": DESKTOP_UA, "Host": host},
    )


def test_junk_hostnames_under_a_wildcard_are_refused(site):
    junk = [
        "http://<img src=x onerror=alert(20)>.probe.test/",
        "http://a b.probe.test/",
        "http://evil.com%2f.probe.test/",
        "http://shop.probe.test:99999/",
    ]
    body = post(
        site,
        [collect_payload(url=url) for url in junk]
        + [collect_payload(url="http://Shop.Probe.Test./ok")],
    ).get_json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2, 3]
    hosts = {r["hostname"] for t, r in all_rows(site) if t == "analytics_event"}
    assert hosts == {"shop.probe.test"}


def test_a_host_header_with_a_trailing_dot_is_that_host(make_app):
    app = make_app(ANALYTICS_RATE_LIMIT=None)  # default: only the request's own host
    body = post(app, collect_payload(url="http://localhost/"), host="localhost.").get_json()
    assert body["accepted"] == 1, body
    body = post(app, collect_payload(url="http://localhost./"), host="localhost").get_json()
    assert body["accepted"] == 1, body
    body = post(app, collect_payload(url="http://localhost/"), host="localhost:99999").get_json()
    assert body["dropped"] == {"host_not_allowed": 1}


def test_no_secret_of_a_routed_fragment_is_stored_and_its_utm_tags_count(site):
    url = "https://x.com/app#/reset?token=SECRET&email=a@b.c&utm_source=newsletter&utm_medium=email"
    body = post(site, collect_payload(url=url, hash_routing=True)).get_json()
    assert body["accepted"] == 1
    analytics = site.extensions["analytics_test"]
    table = analytics.Event.__table__
    with site.app_context(), analytics.db.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.hostname == "x.com")).mappings().one()
    assert row["path"] == "/app#/reset"
    assert (row["utm_source"], row["utm_medium"], row["channel"]) == (
        "newsletter",
        "email",
        "Email",
    )
    dump = json.dumps(all_rows(site), default=str)
    assert "SECRET" not in dump
    assert "a@b.c" not in dump
