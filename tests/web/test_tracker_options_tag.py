"""``analytics_script()``'s delivery options (batching, manual pageviews, debug) and the
script builds ``script_view`` serves for them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from flask_analytics.web.tracker import STATIC_DIR, analytics_script, tracker_asset

from .tracker_app import create_app

SCRIPT = "/_analytics/script.js"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(f"sqlite:///{tmp_path / 'options.db'}")


def attrs(app: Flask, **options) -> dict[str, str]:
    with app.test_request_context("/"):
        tag = str(analytics_script(**options))
    return dict(re.findall(r' ([a-z-]+)="([^"]*)"', tag))


def test_defaults_write_no_delivery_attribute(app):
    values = attrs(app, batch_size=20, batch_timeout_ms=1000, auto_pageviews=True, debug=False)
    assert values == attrs(app)
    assert values["src"] == f"{SCRIPT}?v={tracker_asset().version}"


def test_batching_options_become_data_attributes(app):
    values = attrs(app, batch_size=5, batch_timeout_ms=0)
    assert values["data-batch-size"] == "5"
    assert values["data-batch-timeout"] == "0"
    assert values["src"] == f"{SCRIPT}?v={tracker_asset().version}"  # the same build


def test_the_default_batch_size_follows_a_smaller_max_batch(tmp_path: Path):
    app = create_app(f"sqlite:///{tmp_path / 'small.db'}", ANALYTICS_MAX_BATCH=8)
    assert attrs(app)["data-batch-size"] == "8"
    with pytest.raises(ValueError, match=r"batch_size must be a whole number from 1 to 8"):
        attrs(app, batch_size=9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a whole number from 1 to 50"),
        ({"batch_size": 51}, "batch_size must be a whole number from 1 to 50"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": "5"}, "batch_size"),
        ({"batch_timeout_ms": -1}, "batch_timeout_ms must be a whole number from 0 to 60000"),
        ({"batch_timeout_ms": 60_001}, "batch_timeout_ms"),
        ({"batch_timeout_ms": 1e3}, "batch_timeout_ms"),
    ],
)
def test_bad_batching_options_are_refused(app, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        attrs(app, **options)


def test_manual_pageviews_load_the_manual_build(app):
    values = attrs(app, auto_pageviews=False)
    version = tracker_asset(manual=True).version
    assert values["src"] == f"{SCRIPT}?v={version}&amp;build=manual"
    assert values["data-pageviews"] == "false"  # read by the readable build (debug)
    assert version != tracker_asset().version


def test_debug_loads_the_readable_script(app):
    values = attrs(app, debug=True, auto_pageviews=False)
    assert values["src"] == f"{SCRIPT}?v={tracker_asset(debug=True).version}&amp;build=debug"
    assert values["data-debug"] == "true"
    assert values["data-pageviews"] == "false"


@pytest.mark.parametrize(
    ("build", "file", "cache"),
    [
        (None, "tracker.min.js", "immutable"),
        ("manual", "tracker.manual.min.js", "immutable"),
        ("debug", "tracker.js", "no-cache"),
    ],
)
def test_script_view_serves_each_build(app, build, file, cache):
    debug, manual = build == "debug", build == "manual"
    version = tracker_asset(debug, manual=manual).version
    query = {"v": version} | ({"build": build} if build else {})
    response = app.test_client().get(SCRIPT, query_string=query)
    assert response.status_code == 200
    assert response.data == (STATIC_DIR / file).read_bytes()
    assert cache in response.headers["Cache-Control"]
    assert response.headers["ETag"] == f'"{version}"'


def test_script_view_refuses_an_unknown_build(app):
    response = app.test_client().get(SCRIPT, query_string={"build": "evil"})
    assert response.status_code == 404
    assert b"build must be one of manual, debug" in response.data
