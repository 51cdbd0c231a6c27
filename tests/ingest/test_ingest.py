"""Pipeline steps seen through the endpoint: bots, DNT, exclusions, proxies, geo."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ..conftest import DESKTOP_UA, MOBILE_UA, collect_payload, custom_event_model
from ..support.geo import write_country_mmdb


def events(app):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        return list(ext.db.session.scalars(sa.select(ext.Event).order_by(ext.Event.id)))


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "python-requests/2.31.0",
        "curl/8.4.0",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "",
    ],
)
def test_bots_are_dropped(app, post_event, ua):
    response = post_event(collect_payload(), ua=ua)
    assert response.status_code == 202
    assert response.headers["X-Analytics-Dropped"] == "bot"
    assert events(app) == []


@pytest.mark.parametrize(
    ("ua", "device", "browser", "os"),
    [
        (DESKTOP_UA, "desktop", "Chrome", "Windows"),
        (MOBILE_UA, "mobile", "Safari", "iOS"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
            "desktop",
            "Firefox",
            "macOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "tablet",
            "Safari",
            "iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
            "mobile",
            "Chrome",
            "Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "desktop",
            "Edge",
            "Windows",
        ),
    ],
)
def test_real_browsers_are_kept_and_classified(app, post_event, ua, device, browser, os):
    assert post_event(collect_payload(), ua=ua).get_json()["stored"] == 1
    [event] = events(app)
    assert (event.device_type, event.browser, event.os) == (device, browser, os)


@pytest.mark.parametrize("header", ["DNT", "Sec-GPC"])
def test_dnt_and_gpc_dropped_when_respected(make_app, header):
    app = make_app()
    response = app.test_client().post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, header: "1"},
    )
    assert response.headers["X-Analytics-Dropped"] == "dnt"
    assert events(app) == []
    app2 = make_app(ANALYTICS_RESPECT_DNT=False)
    response = app2.test_client().post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, header: "1"},
    )
    assert response.get_json()["stored"] == 1


def test_excluded_paths(make_app):
    app = make_app(ANALYTICS_EXCLUDED_PATHS=["/admin/*", "/health"])
    client = app.test_client()
    for path, stored in [("/admin/users", 0), ("/health", 0), ("/healthy", 1), ("/blog", 1)]:
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(url=f"http://localhost{path}"),
            headers={"User-Agent": DESKTOP_UA},
        )
        assert response.get_json()["stored"] == stored, path
        if not stored:
            assert response.headers["X-Analytics-Dropped"] == "excluded"
    assert sorted(e.path for e in events(app)) == ["/blog", "/healthy"]


def test_excluded_ips_use_the_full_address(make_app):
    app = make_app(ANALYTICS_EXCLUDED_IPS=["203.0.113.7/32", "2001:db8::/32"])
    client = app.test_client()
    for ip, stored in [
        ("203.0.113.7", 0),
        ("203.0.113.8", 1),
        ("2001:db8::1", 0),
        ("2001:db9::1", 1),
    ]:
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(),
            headers={"User-Agent": DESKTOP_UA},
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.get_json()["stored"] == stored, ip


def test_spoofed_forwarded_for_ignored_by_default(make_app):
    app = make_app(ANALYTICS_EXCLUDED_IPS=["198.51.100.0/24"])
    client = app.test_client()
    # The spoofer claims an excluded address: ignored, so the event is recorded.
    response = client.post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Forwarded-For": "198.51.100.1"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.get_json()["stored"] == 1
    # And a spoofed address does not change the visitor.
    client.post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Forwarded-For": "192.0.2.99"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    first, second = events(app)
    assert first.visitor_id == second.visitor_id


def test_forwarded_for_honoured_with_trusted_proxies(make_app):
    app = make_app(ANALYTICS_TRUSTED_PROXIES=1, ANALYTICS_EXCLUDED_IPS=["198.51.100.0/24"])
    client = app.test_client()
    response = client.post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Forwarded-For": "192.0.2.1, 198.51.100.1"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.headers["X-Analytics-Dropped"] == "excluded"
    # Only the last hop is trusted: a client-supplied left part cannot pick its address.
    response = client.post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.get_json()["stored"] == 1
    # Different forwarded clients are different visitors; the proxy address is not used.
    client.post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Forwarded-For": "192.0.2.200"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    first, second = events(app)
    assert first.visitor_id != second.visitor_id


def test_country_from_configured_header(make_app):
    app = make_app(ANALYTICS_COUNTRY_HEADER="CF-IPCountry")
    client = app.test_client()
    for value in ["de", "XX", "T1", "<script>"]:
        client.post(
            "/_analytics/collect",
            json=collect_payload(),
            headers={"User-Agent": DESKTOP_UA, "CF-IPCountry": value},
        )
    assert [e.country for e in events(app)] == ["DE", None, None, None]


def test_header_ignored_when_not_configured(app, post_event):
    post_event(collect_payload(), headers={"CF-IPCountry": "FR"})
    assert [e.country for e in events(app)] == [None]


@pytest.fixture
def mmdb_file(tmp_path: Path) -> Path:
    """A real MaxMind-format country database, built with mmdb-writer."""
    countries = {"203.0.113.0/24": "NZ", "198.51.100.0/24": "BR", "2001:db8::/32": "JP"}
    return write_country_mmdb(tmp_path / "country.mmdb", countries)


def test_country_from_real_mmdb(make_app, mmdb_file):
    app = make_app(ANALYTICS_GEOIP_DATABASE=str(mmdb_file))
    client = app.test_client()
    for ip in ["203.0.113.200", "198.51.100.3", "2001:db8:1:2::5", "192.0.2.1"]:
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(),
            headers={"User-Agent": DESKTOP_UA},
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.get_json()["stored"] == 1
    assert [e.country for e in events(app)] == ["NZ", "BR", "JP", None]


def test_unreadable_geoip_database_fails_at_startup(make_app, tmp_path):
    from flask_analytics import ConfigError

    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="ANALYTICS_GEOIP_DATABASE"):
        make_app(ANALYTICS_GEOIP_DATABASE=str(bad))


def test_hash_routing_keeps_fragment(app, post_event):
    post_event(collect_payload(url="http://localhost/app#/settings", hash_routing=True))
    post_event(collect_payload(url="http://localhost/app#section"))
    assert [e.path for e in events(app)] == ["/app#/settings", "/app"]


def test_offset_ms_backdates_queued_events(app, post_event):
    import datetime as dt

    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    post_event(collect_payload(offset_ms=3_600_000))
    [event] = events(app)
    delta = before - event.created_at
    assert dt.timedelta(minutes=59) < delta < dt.timedelta(minutes=61)


def test_enrich_hook_sees_request_and_fills_custom_column(make_app):
    app = make_app(event_model=custom_event_model)
    ext = app.extensions["analytics_test"]

    @ext.enrich
    def add_plan(event, request):
        event["plan"] = request.headers.get("X-Plan") if request is not None else "server"

    app.test_client().post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": DESKTOP_UA, "X-Plan": "pro"},
    )
    with app.app_context():
        ext.track("signup", url="https://example.com/signup")
    assert [e.plan for e in events(app)] == ["pro", "server"]


def test_referrer_spam_from_a_configured_list_is_dropped(make_app, tmp_path):
    spam_list = tmp_path / "spammers.txt"
    spam_list.write_text(
        "# Matomo's format: one domain per line\nbest-seo-offer.example\n\nfree-traffic.example\n"
    )
    app = make_app(ANALYTICS_REFERRER_SPAM_LIST=str(spam_list))
    client = app.test_client()
    cases = [
        ("https://best-seo-offer.example/", 0),
        ("https://www.free-traffic.example/x?y=1", 0),
        ("https://sub.best-seo-offer.example/", 0),
        ("https://not-best-seo-offer.example/", 1),
        ("https://www.google.com/", 1),
        (None, 1),
    ]
    for referrer, stored in cases:
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(referrer=referrer),
            headers={"User-Agent": DESKTOP_UA},
        )
        assert response.get_json()["stored"] == stored, referrer
        if not stored:
            assert response.headers["X-Analytics-Dropped"] == "spam"
    assert len(events(app)) == 3


def test_unreadable_spam_list_fails_at_startup(make_app, tmp_path):
    from flask_analytics import ConfigError

    with pytest.raises(ConfigError, match="ANALYTICS_REFERRER_SPAM_LIST"):
        make_app(ANALYTICS_REFERRER_SPAM_LIST=str(tmp_path / "missing.txt"))
