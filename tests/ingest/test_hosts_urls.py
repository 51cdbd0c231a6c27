"""Hostnames (ingest/hosts.py) and routed fragments (payload.split_url), on their own."""

from __future__ import annotations

import pytest

from flask_analytics.errors import InvalidEvent
from flask_analytics.ingest.hosts import (
    host_allowed,
    hostname_of_authority,
    normalize_hostname,
    normalize_patterns,
)
from flask_analytics.ingest.payload import split_url


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Example.COM", "example.com"),
        ("localhost.", "localhost"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("<img src=x onerror=alert(20)>.probe.test", None),
        ("a b.probe.test", None),
        ("evil.com%2f.probe.test", None),
        ("a_b.example", None),
        ("-a.example", None),
        ("a..example", None),
        ("xn--zz.example", None),
        ("a" * 64 + ".example", None),
        ("localhost..", None),
        ("fe80::1%eth0", None),
    ],
)
def test_hostnames_are_valid_dns_names_in_one_spelling(host, expected):
    assert normalize_hostname(host) == expected


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("localhost.", "localhost"),
        ("LOCALHOST:5000", "localhost"),
        ("localhost:65535", "localhost"),
        ("localhost:99999", None),
        ("localhost:0", None),
        ("localhost:x", None),
        ("[::1]:8080", "::1"),
    ],
)
def test_request_hosts_are_normalized_and_bad_ports_refused(authority, expected):
    assert hostname_of_authority(authority) == expected


def test_wildcards_match_whole_labels_and_settings_are_normalized():
    patterns = normalize_patterns(("*.Probe.Test.", "Bücher.de", "not a host"))
    assert patterns == ("*.probe.test", "xn--bcher-kva.de")
    assert host_allowed("a.probe.test", patterns)
    assert host_allowed("a.b.probe.test", patterns)
    assert host_allowed("xn--bcher-kva.de", patterns)
    assert not host_allowed("probe.test", patterns)
    assert not host_allowed("evilprobe.test", patterns)


def test_a_space_in_the_path_is_not_a_hostname_problem():
    assert split_url("https://x.test/a b", "url")[0] == "x.test"


@pytest.mark.parametrize(
    "url",
    [
        "http://<img src=x onerror=alert(20)>.probe.test/",
        "http://a b.probe.test/",
        "http://evil.com%2f.probe.test/",
        "http://localhost:99999/",
        "http://localhost:0/",
    ],
)
def test_junk_hosts_and_ports_are_invalid(url):
    with pytest.raises(InvalidEvent, match=r"url has an invalid|url is not a valid URL"):
        split_url(url, "url")


@pytest.mark.parametrize(
    ("url", "path", "utm", "click_ids"),
    [
        (
            "https://x.com/app#/reset?token=SECRET&email=a@b.c",
            "/app#/reset",
            {},
            set(),
        ),
        (
            "https://x.com/app#/dashboard?utm_source=news&utm_medium=email&gclid=1&s=SECRET",
            "/app#/dashboard",
            {"utm_source": "news", "utm_medium": "email"},
            {"gclid"},
        ),
        (
            # The URL's own UTM tags come first; the fragment's add what is missing.
            "https://x.com/app?utm_source=ad#/p?utm_source=other&utm_campaign=c",
            "/app#/p",
            {"utm_source": "ad", "utm_campaign": "c"},
            set(),
        ),
        ("https://x.com/cb#access_token=SECRET&state=1", "/cb", {}, set()),
        ("https://x.com/app#/reset&token=SECRET", "/app", {}, set()),
        ("https://x.com/app#/settings", "/app#/settings", {}, set()),
    ],
)
def test_routed_fragments_keep_their_route_and_only_utm_of_their_query(url, path, utm, click_ids):
    host, got_path, got_utm, got_clicks = split_url(url, "url", hash_routing=True)
    assert (host, got_path, got_utm, set(got_clicks)) == ("x.com", path, utm, click_ids)
    assert "SECRET" not in got_path


def test_without_hash_routing_the_fragment_is_dropped_whole():
    assert split_url("https://x.com/app#/reset?token=SECRET&utm_source=a", "url")[1:3] == (
        "/app",
        {},
    )
