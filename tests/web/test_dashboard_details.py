"""Dashboard details on SQLite and PostgreSQL: flags are shipped SVG images (no emoji),
CSV rates have 4 decimals and durations whole seconds (counts and JSON exact), headers
are human words, and "Show more" grows one panel of the Sources, Devices and Locations
pages (``more=NAME``). Numbers are checked against the plain-Python reference."""

from __future__ import annotations

import configparser
import csv
import io
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from flask import Flask

from flask_analytics.reports import BREAKDOWNS, DateRange
from flask_analytics.web import STATIC_DIR
from flask_analytics.web.dashboard import CONTENT_SECURITY_POLICY
from flask_analytics.web.dashboard.export import csv_number
from flask_analytics.web.dashboard.format import FLAG_CODES, flag

from ..conftest import build_app, release_app
from ..support.details import NOW, WIDE_COUNTRIES, seed_details
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEZONE, Seeded, expected_breakdown, expected_totals

ROOT = Path(__file__).resolve().parents[2]
FLAGS = STATIC_DIR / "flags"
#: Every HTML page of the dashboard (goals and funnels answer without declarations too).
PAGES = [
    "/analytics/",
    "/analytics/pages",
    "/analytics/pages/detail?path=/pricing",
    "/analytics/sources",
    "/analytics/locations",
    "/analytics/devices",
    "/analytics/events",
    "/analytics/engagement",
    "/analytics/goals",
    "/analytics/funnels",
    "/analytics/realtime",
]
#: Regional indicator letters: two of them make a flag emoji.
EMOJI_FLAG = re.compile("[\U0001f1e6-\U0001f1ff]")


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[tuple[Flask, Seeded]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(module_database_url, schemas, "details", ANALYTICS_TIMEZONE=TIMEZONE)
        seeded = seed_details(app)
        yield app, seeded
        release_app(app, db, schemas)


def get(app: Flask, url: str) -> Any:
    with time_machine.travel(NOW, tick=False):
        response = app.test_client().get(url)
        response.get_data()
        response.close()  # static files hold a file open
        return response


def week(seeded: Seeded) -> DateRange:
    return DateRange(seeded.live_past, seeded.today)


def span(seeded: Seeded) -> str:
    rng = week(seeded)
    return f"start={rng.start}&end={rng.end}"


class Page(HTMLParser):
    """The parts of a dashboard page these tests read: images, headers per panel, rows per
    panel and "Show more" links per panel."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.headers: dict[str, list[str]] = {}
        self.rows: dict[str, list[str]] = {}
        self.more: dict[str, str] = {}
        self.filter_links: list[str] = []
        self._panel = ""
        self._in_th = False
        self._th: list[str] = []
        self._more_href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._panel = a.get("data-dimension") or ""
        elif tag == "img":
            self.images.append(a)
        elif tag == "th":
            self._in_th, self._th = True, []
        elif tag == "tr" and "data-key" in a:
            self.rows.setdefault(self._panel, []).append(a["data-key"] or "")
        elif tag == "a" and "fa-more" in (a.get("class") or ""):
            self.more[self._panel] = a["href"] or ""
        elif tag == "a" and "data-filter-link" in a:
            self.filter_links.append(a["href"] or "")

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self._th.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False
            self.headers.setdefault(self._panel, []).append("".join(self._th).strip())


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# -- flags ----------------------------------------------------------------------------------------


def test_shipped_flags_cover_every_named_country_with_their_licence() -> None:
    files = {p.stem for p in FLAGS.glob("*.svg")}
    assert files == {*FLAG_CODES, "xx"}
    template = (ROOT / "flask_analytics/templates/analytics/_countries.html").read_text()
    named = {code.lower() for code in re.findall(r'"([A-Z]{2})":', template)}
    assert len(named) > 240
    assert named <= FLAG_CODES
    for path in FLAGS.glob("*.svg"):
        text = path.read_text()
        assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg"'), path.name
        assert 'viewBox="0 0 640 480"' in text, path.name  # 4x3
        assert "<script" not in text, path.name
        assert 'href="http' not in text, path.name
    licence = (FLAGS / "LICENSE").read_text()
    assert "flag-icons" in licence
    assert "MIT License" in licence
    # Shipped in the wheel.
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "static/analytics/flags/*" in config["options.package_data"]["flask_analytics"]


def test_flag_is_a_file_per_code_and_a_neutral_one_for_unknowns() -> None:
    assert flag("FR") == "flags/fr.svg"
    assert flag("gb") == "flags/gb.svg"
    assert flag("XK") == "flags/xk.svg"
    for unknown in (None, "", "ZZ", "T1", "FRA", "<b>"):
        assert flag(unknown) == "flags/xx.svg", unknown


def test_no_page_shows_an_emoji_flag_and_countries_show_their_flag_image(site) -> None:
    app, seeded = site
    for url in PAGES:
        sep = "&" if "?" in url else "?"
        response = get(app, f"{url}{sep}{span(seeded)}" if "realtime" not in url else url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert not EMOJI_FLAG.search(html), url
        for image in Page(html).images:
            assert image["class"] == "fa-flag", url
            assert image["alt"] == "", url  # decorative: the name follows as text
    page = Page(get(app, f"/analytics/locations?{span(seeded)}&limit=200").get_data(as_text=True))
    sources = [image["src"] for image in page.images]
    keys = page.rows["country"]
    assert set(WIDE_COUNTRIES) <= set(keys)
    assert sources == [
        f"/analytics/static/flags/{k.lower() if k.lower() in FLAG_CODES else 'xx'}.svg"
        for k in keys
    ]
    # The images come from the dashboard's own static files, allowed by its CSP.
    assert "img-src 'self'" in CONTENT_SECURITY_POLICY
    response = get(app, "/analytics/static/flags/fr.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.data == (FLAGS / "fr.svg").read_bytes()


# -- CSV numbers ----------------------------------------------------------------------------------


def decimals(text: str) -> int:
    return len(text.partition(".")[2])


def test_csv_number_rounds_fractions_only() -> None:
    assert csv_number("bounce_rate", 0.123456789) == 0.1235
    assert csv_number("views_per_session", 2.0) == 2.0
    assert csv_number("avg_visit_duration_s", 38.85749468713105) == 39
    assert csv_number("time_on_page_ms_average", 1234.56) == 1235
    assert csv_number("visitors", 123456789) == 123456789
    assert csv_number("bounce_rate", None) is None
    assert csv_number("source", "Google") == "Google"


def test_stats_csv_rounds_rates_and_durations_and_keeps_counts(site) -> None:
    app, seeded = site
    rng = week(seeded)
    body = get(app, f"/analytics/api/stats?{span(seeded)}").get_json()
    text = get(app, f"/analytics/api/stats?{span(seeded)}&format=csv").get_data(as_text=True)
    row = next(csv.DictReader(io.StringIO(text)))
    expected = expected_totals(seeded, rng)
    # Counts: exact, as the reference and the JSON.
    for name, value in expected.counts().items():
        assert int(row[name]) == value == body["totals"][name], name
    # JSON: exact rates; CSV: 4 decimals, durations whole seconds.
    rates = expected.rates()
    assert rates["avg_visit_duration_s"] is not None
    assert not float(rates["avg_visit_duration_s"]).is_integer()  # rounding shows
    for name, value in rates.items():
        assert value is not None
        assert body["rates"][name] == pytest.approx(value, abs=1e-12), name
        if name.endswith("_s"):
            assert row[name] == str(round(value)), name
        else:
            assert decimals(row[name]) <= 4, (name, row[name])
            assert float(row[name]) == pytest.approx(value, abs=0.00005), name


def test_breakdown_csv_rounds_per_column(site) -> None:
    app, seeded = site
    for name in ("source", "page"):
        dimension = BREAKDOWNS[name]
        expected = expected_breakdown(seeded, dimension, week(seeded))
        url = f"/analytics/api/breakdown/{name}?{span(seeded)}"
        rows = {r[name]: r for r in get(app, url).get_json()["rows"]}
        text = get(app, f"{url}&format=csv").get_data(as_text=True)
        seen_fraction = False
        for line in csv.DictReader(io.StringIO(text)):
            key = line[name] or None
            assert {c: int(line[c]) for c in dimension.counts} == expected[key], key
            for rate in dimension.rates:
                exact = rows[key][rate]
                if exact is None:
                    assert line[rate] == ""
                    continue
                seen_fraction |= not float(exact).is_integer()
                if rate.endswith("_s"):
                    assert line[rate] == str(round(exact)), (key, rate)
                else:
                    assert decimals(line[rate]) <= 4, (key, rate, line[rate])
                    assert float(line[rate]) == pytest.approx(exact, abs=0.00005)
        assert seen_fraction, name


def test_sessions_csv_rounds_shares(site) -> None:
    app, seeded = site
    body = get(app, f"/analytics/api/sessions?{span(seeded)}").get_json()
    text = get(app, f"/analytics/api/sessions?{span(seeded)}&format=csv").get_data(as_text=True)
    lines = list(csv.DictReader(io.StringIO(text)))
    exact = [r for name in ("duration", "pages") for r in body[name]]
    assert len(lines) == len(exact)
    assert sum(int(line["sessions"]) for line in lines) == 2 * body["sessions"]
    assert body["sessions"] == expected_totals(seeded, week(seeded)).sessions
    for line, row in zip(lines, exact, strict=True):
        assert int(line["sessions"]) == row["sessions"]
        if row["share"] is not None:
            assert decimals(line["share"]) <= 4
            assert float(line["share"]) == pytest.approx(row["share"], abs=0.00005)


# -- headers --------------------------------------------------------------------------------------


def test_headers_are_words_not_keys(site) -> None:
    app, seeded = site
    for url in ("/analytics/sources", "/analytics/devices", "/analytics/locations", "/analytics/"):
        page = Page(get(app, f"{url}?{span(seeded)}").get_data(as_text=True))
        assert page.headers, url
        for panel, headers in page.headers.items():
            for header in headers:
                assert "_" not in header, (url, panel, header)
    sources = Page(get(app, f"/analytics/sources?{span(seeded)}").get_data(as_text=True))
    # The panels keep their dimension names as data attributes.
    assert sources.headers["utm_source"][0] == "UTM source"
    assert sources.headers["utm_medium"][0] == "UTM medium"
    assert sources.headers["utm_campaign"][0] == "UTM campaign"
    for name, dimension in BREAKDOWNS.items():
        assert dimension.label, name
        assert "_" not in dimension.label, name


# -- "Show more" per panel ------------------------------------------------------------------------


def api_keys(app: Flask, seeded: Seeded, name: str, limit: int) -> list[str]:
    url = f"/analytics/api/breakdown/{name}?{span(seeded)}&limit={limit}"
    return [r[name] or "" for r in get(app, url).get_json()["rows"]]


@pytest.mark.parametrize(
    ("endpoint", "panel", "step", "others"),
    [
        ("sources", "source", 10, ("channel", "referrer", "utm_source")),
        ("sources", "utm_source", 10, ("source", "referrer")),
        ("devices", "browser", 10, ("os", "device_type")),
        ("locations", "country", 50, ()),
    ],
)
def test_show_more_grows_one_panel(site, endpoint, panel, step, others) -> None:
    app, seeded = site
    rng = week(seeded)
    total = {
        name: len(expected_breakdown(seeded, BREAKDOWNS[name], rng)) for name in (panel, *others)
    }
    assert total[panel] > step  # the data set has more rows than the panel shows
    page = Page(get(app, f"/analytics/{endpoint}?{span(seeded)}").get_data(as_text=True))
    assert page.rows[panel] == api_keys(app, seeded, panel, step)
    link = page.more[panel]
    assert query_of(link)["more"] == [panel]
    assert query_of(link)["limit"] == [str(2 * step)]
    assert query_of(link)["start"] == [str(rng.start)]
    for name in others:
        assert len(page.rows.get(name, [])) == min(step, total[name]), name
        # A panel showing all its rows offers no more.
        assert (name in page.more) == (total[name] >= step), name
    # Following it: that panel grows, the others keep their size, and the page's links
    # (filters, the next "Show more") keep the choice.
    more = Page(get(app, link).get_data(as_text=True))
    assert more.rows[panel] == api_keys(app, seeded, panel, 2 * step)
    assert len(more.rows[panel]) == min(2 * step, total[panel])
    for name in others:
        assert more.rows.get(name, []) == page.rows.get(name, []), name
    assert more.filter_links
    for href in more.filter_links:
        assert query_of(href)["more"] == [panel], href
        assert query_of(href)["limit"] == [str(2 * step)], href
    if total[panel] >= 2 * step:
        assert query_of(more.more[panel])["limit"] == [str(3 * step)]
    else:
        assert panel not in more.more
    for name in others:
        if name in more.more:
            assert query_of(more.more[name])["more"] == [name]
            assert query_of(more.more[name])["limit"] == [str(2 * step)]


def test_more_names_a_panel_of_the_page(site) -> None:
    app, seeded = site
    response = get(app, f"/analytics/devices?{span(seeded)}&more=source")
    assert response.status_code == 400
    assert (
        "more must be one of device_type, browser, os, browser_version, os_version, screen, "
        "not &#39;source&#39;"
    ) in (response.get_data(as_text=True))
    # An explicit limit with more: that panel's size; empty more: none chosen.
    page = Page(
        get(app, f"/analytics/sources?{span(seeded)}&more=source&limit=3").get_data(as_text=True)
    )
    assert len(page.rows["source"]) == 3
    assert len(page.rows["referrer"]) == 10
    page = Page(get(app, f"/analytics/sources?{span(seeded)}&more=").get_data(as_text=True))
    assert len(page.rows["source"]) == len(page.rows["referrer"]) == 10
    # Without more, limit still sizes every panel.
    page = Page(get(app, f"/analytics/sources?{span(seeded)}&limit=12").get_data(as_text=True))
    assert len(page.rows["source"]) == len(page.rows["referrer"]) == 12
