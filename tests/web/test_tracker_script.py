"""``analytics_script()`` (the tag and its escaping) and ``script_view`` (caching)."""

from __future__ import annotations

import fnmatch
import gzip
import html
import json
import re
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from hypothesis import given
from hypothesis import strategies as st

from flask_analytics.web.tracker import (
    STATIC_DIR,
    analytics_script,
    glob_to_js_regex,
    tracker_asset,
)

from .tracker_app import create_app
from .tracker_fixtures import create_fields_app

SCRIPT = "/_analytics/script.js"


def make(tmp_path: Path, **config) -> Flask:
    return create_app(f"sqlite:///{tmp_path / 'script.db'}", **config)


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make(tmp_path)


def attrs(tag: str) -> dict[str, str]:
    assert tag.startswith("<script defer ")
    assert tag.endswith("></script>")
    return dict(re.findall(r' ([a-z-]+)="([^"]*)"', tag))


def render(app: Flask, **options) -> str:
    with app.test_request_context("/"):
        return str(analytics_script(**options))


# -- analytics_script() --------------------------------------------------------------------


def test_default_tag_loads_the_versioned_script_with_the_collect_url(app):
    tag = render(app)
    version = tracker_asset().version
    assert attrs(tag) == {"src": f"{SCRIPT}?v={version}", "data-api": "/_analytics/collect"}


def test_template_global_renders_the_same_tag(app):
    with app.test_request_context("/"):
        html = render_template_string("{{ analytics_script(mode='strict') }}")
        assert html == str(analytics_script(mode="strict"))


def test_every_option_becomes_a_data_attribute(app):
    tag = render(
        app,
        mode="full",
        sample_rate=0.25,
        hash_routing=True,
        track_outbound=False,
        track_forms=False,
        download_extensions=[".PDF", "tar.gz", "zip"],
        exclude=["/admin/*", "/private"],
        collect_url="https://stats.example.org/collect",
        respect_dnt=False,
        allow_automation=True,
        nonce="n0nce",
        fields={"ab_variant": "B"},
    )
    assert attrs(tag) == {
        "src": f"{SCRIPT}?v={tracker_asset().version}",
        "data-api": "https://stats.example.org/collect",
        "data-mode": "full",
        "data-sample-rate": "0.25",
        "data-hash-routing": "true",
        "data-outbound": "false",
        "data-downloads": r"pdf|tar\.gz|zip",
        "data-forms": "false",
        "data-exclude": r"^(?:/admin/.*|/private)$",
        "data-dnt": "false",
        "data-allow-automation": "true",
        "data-fields": "{&#34;ab_variant&#34;:&#34;B&#34;}",
        "nonce": "n0nce",
    }


def test_downloads_off_wins_over_extensions(app):
    assert (
        attrs(render(app, track_downloads=False, download_extensions=["pdf"]))["data-downloads"]
        == "false"
    )


def test_attribute_values_are_escaped(app):
    evil = '"><script>alert(1)</script>'
    tag = render(app, collect_url=evil, nonce=evil, exclude=['/a"<b>*'])
    assert "<script>alert" not in tag
    assert tag.count("<script") == 1
    assert tag.count('"') % 2 == 0
    values = attrs(tag)
    assert values["data-api"] == "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert values["nonce"] == values["data-api"]
    assert values["data-exclude"] == r"^(?:/a&#34;&lt;b&gt;.*)$"


def test_fields_are_escaped_json(app):
    evil = "\"></script><script>alert(1)</script>&amp;'\u2028é"
    fields = {"ab_variant": evil, "count": 3, "ratio": 0.5, "beta": True, "plan": None}
    tag = render(app, fields=fields)
    assert "<script>alert" not in tag
    assert "</script>" not in tag[:-9]
    assert tag.count("<script") == 1
    assert tag.count('"') % 2 == 0
    raw = attrs(tag)["data-fields"]
    assert not set(raw) & set("<>\"'")  # only entities: safe in any attribute quoting
    assert raw.isascii()
    # What the browser's dataset.fields gives the tracker: the JSON, None left out.
    assert json.loads(html.unescape(raw)) == {
        "ab_variant": evil, "count": 3, "ratio": 0.5, "beta": True,
    }  # fmt: skip


@pytest.mark.parametrize("fields", [{}, {"ab_variant": None}])
def test_no_fields_set_no_attribute(app, fields):
    assert "data-fields" not in attrs(render(app, fields=fields))


def test_strict_mode_writes_no_fields(app):
    # Strict mode sends only name, url and referrer: the values stay out of the page.
    values = attrs(render(app, mode="strict", fields={"ab_variant": "B"}))
    assert values["data-mode"] == "strict"
    assert "data-fields" not in values


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"ab-variant": "B"}, ValueError, "must be a column name"),
        ({"": "B"}, ValueError, "must be a column name"),
        ({1: "B"}, ValueError, "must be a column name"),
        ({"referrer": "https://evil.example/"}, ValueError, "built-in event field"),
        ({"url": "x"}, ValueError, "built-in event field"),
        ({"hash_routing": True}, ValueError, "built-in event field"),
        ({"ab_variant": ["B"]}, TypeError, "must be a string, number, boolean or None"),
        ({"ab_variant": {"x": 1}}, TypeError, "must be a string, number, boolean or None"),
        ({"ab_variant": float("nan")}, ValueError, "finite number"),
        ({"ab_variant": float("inf")}, ValueError, "finite number"),
        ({"ab_variant": 2**60}, ValueError, "finite number"),
        ({"ab_variant": "x" * 2001}, ValueError, "longer than 2000"),
    ],
)
def test_bad_fields_fail_with_a_clear_message(app, fields, error, message):
    with pytest.raises(error, match=message):
        render(app, fields=fields)


def test_fields_must_be_a_mapping(app):
    with pytest.raises(TypeError, match="fields must be a mapping"):
        render(app, fields=[("ab_variant", "B")])


def test_fields_must_fit_the_declared_columns(tmp_path):
    # ab_variant is a client-settable String(16): the endpoint would refuse every event of
    # the page (400) for a value that does not fit, so the tag refuses it first.
    app = create_fields_app(f"sqlite:///{tmp_path / 'fields.db'}")
    values = attrs(render(app, fields={"ab_variant": "B"}))
    assert json.loads(html.unescape(values["data-fields"])) == {"ab_variant": "B"}
    with pytest.raises(ValueError, match="longer than 16 characters"):
        render(app, fields={"ab_variant": "x" * 17})
    with pytest.raises(ValueError, match="must be a string"):
        render(app, fields={"ab_variant": 2})
    with pytest.raises(ValueError, match="control characters"):
        render(app, fields={"ab_variant": "a\nb"})
    # plan is not client-settable: the endpoint ignores it, whatever it is.
    values = attrs(render(app, fields={"plan": "x" * 100, "ab_variant": None}))
    assert json.loads(html.unescape(values["data-fields"])) == {"plan": "x" * 100}


def test_defaults_follow_the_app_config(tmp_path):
    app = make(
        tmp_path,
        ANALYTICS_COLLECT_URL="/stats/event",
        ANALYTICS_SCRIPT_URL="/stats/s.js",
        ANALYTICS_RESPECT_DNT=False,
        ANALYTICS_EXCLUDED_PATHS=["/admin/*"],
    )
    values = attrs(render(app, exclude="/drafts/*"))
    assert values["src"].startswith("/stats/s.js?v=")
    assert values["data-api"] == "/stats/event"
    assert values["data-dnt"] == "false"
    assert values["data-exclude"] == "^(?:/admin/.*|/drafts/.*)$"


def test_urls_include_the_mount_prefix(app):
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": "/shop"}):
        values = attrs(str(analytics_script()))
    assert values["src"].startswith("/shop/_analytics/script.js?v=")
    assert values["data-api"] == "/shop/_analytics/collect"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "paranoid"}, "mode must be one of"),
        ({"sample_rate": 1.5}, "sample_rate must be a number from 0 to 1"),
        ({"sample_rate": -0.1}, "sample_rate must be a number from 0 to 1"),
        ({"sample_rate": True}, "sample_rate must be a number from 0 to 1"),
        ({"download_extensions": ["p df"]}, "must be letters and digits"),
        ({"download_extensions": []}, "use track_downloads=False"),
    ],
)
def test_bad_options_fail_with_a_clear_message(app, options, message):
    with pytest.raises(ValueError, match=message):
        render(app, **options)


def test_unknown_options_are_refused(app):
    with pytest.raises(TypeError):
        render(app, sample=0.5)


# -- globs -> the tracker's exclusion regex --------------------------------------------------

PATHS = st.text(alphabet="/ab.-_*?[]!^$()|\\+", max_size=12)


@given(glob=st.text(alphabet="/ab.-*?[]!^$()|\\+", min_size=1, max_size=8), path=PATHS)
def test_exclusion_regex_matches_what_the_server_excludes(glob, path):
    # The server drops excluded paths with fnmatch; the tracker must agree, so the page
    # sends nothing the server would throw away (and nothing it would keep is lost).
    pattern = glob_to_js_regex([glob])
    assert bool(re.fullmatch(pattern, path)) == (path == glob or fnmatch.fnmatchcase(path, glob))


def test_no_globs_no_regex():
    assert glob_to_js_regex([]) == ""


# -- script_view -------------------------------------------------------------------------------


def test_script_is_served_minified_with_strong_caching(app):
    client = app.test_client()
    version = tracker_asset().version
    response = client.get(f"{SCRIPT}?v={version}", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.data == (STATIC_DIR / "tracker.min.js").read_bytes()
    assert response.headers["ETag"] == f'"{version}"'
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert "Set-Cookie" not in response.headers


def test_unversioned_or_stale_urls_are_cached_briefly(app):
    client = app.test_client()
    for url in (SCRIPT, f"{SCRIPT}?v=0123456789abcdef"):
        assert client.get(url).headers["Cache-Control"] == "public, max-age=3600"


def test_conditional_request_answers_304(app):
    client = app.test_client()
    etag = client.get(SCRIPT, headers={"Accept-Encoding": "identity"}).headers["ETag"]
    response = client.get(SCRIPT, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    other = client.get(SCRIPT, headers={"If-None-Match": '"stale"', "Accept-Encoding": "identity"})
    assert other.status_code == 200


def test_gzip_is_served_when_accepted_with_its_own_etag(app):
    client = app.test_client()
    plain = client.get(SCRIPT, headers={"Accept-Encoding": "identity"})
    zipped = client.get(SCRIPT, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) <= 2000
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = client.get(
        SCRIPT, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("config", [{"DEBUG": True}, {"ANALYTICS_TRACKER_DEBUG": True}])
def test_debug_serves_the_readable_source_revalidated_every_time(tmp_path, config):
    app = make(tmp_path, **config)
    app.debug = bool(config.get("DEBUG"))
    response = app.test_client().get(SCRIPT, headers={"Accept-Encoding": "identity"})
    assert response.data == (STATIC_DIR / "tracker.js").read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"
    assert attrs(render(app))["src"].endswith("?v=" + tracker_asset(debug=True).version)
