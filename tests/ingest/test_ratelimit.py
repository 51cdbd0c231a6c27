"""Rate limit of the collect endpoint per network (anonymized IP prefix), with a burst
allowance (429), in memory and in Redis shared between app instances and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest
import sqlalchemy as sa

from flask_analytics.config import DEFAULTS, load_settings

from ..conftest import DESKTOP_UA, MOBILE_UA, REDIS_URL, collect_payload, redis_or_skip
from ..support.processes import ROOT


def count(app):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        return ext.db.session.scalar(sa.select(sa.func.count()).select_from(ext.Event))


def post(client, n=1, ip="203.0.113.5", ua=DESKTOP_UA, forwarded=None):
    headers = {"User-Agent": ua}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return client.post(
        "/_analytics/collect",
        json=[collect_payload() for _ in range(n)],
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )


#: Counting happens before storage, the same for either database: the slow tests run once.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_rotating_user_agents_and_addresses_of_one_network_get_limit_plus_burst(
    make_app, frozen_clock
):
    app = make_app(ANALYTICS_RATE_LIMIT="100/minute", ANALYTICS_RATE_LIMIT_BURST="50/hour")
    client = app.test_client()
    answers = [
        post(client, ip=f"203.0.113.{i % 250 + 1}", ua=f"{DESKTOP_UA} rotate/{i}").status_code
        for i in range(2000)
    ]
    # Sustained 100, then 50 more from the burst allowance, then nothing: the user agent
    # and the last octet are not part of the key.
    assert answers[:150] == [202] * 150
    assert set(answers[150:]) == {429}
    assert count(app) == 150
    limited = post(client, ip="203.0.113.9")
    assert (
        "100 per 1 minute per network (+ a burst of 50 per 1 hour)" in limited.get_json()["error"]
    )
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # Another network is not affected.
    assert post(client, ip="198.51.100.5", ua=MOBILE_UA).status_code == 202
    assert count(app) == 151


def test_sustained_room_comes_back_and_the_burst_lasts_its_own_window(make_app, frozen_clock):
    app = make_app(ANALYTICS_RATE_LIMIT="10/minute", ANALYTICS_RATE_LIMIT_BURST="5/hour")
    client = app.test_client()
    assert post(client, 10).status_code == 202
    assert post(client, 5).status_code == 202  # the burst
    assert post(client, 1).status_code == 429
    frozen_clock.shift(125)  # two minutes later: the minute windows are empty again
    assert post(client, 10).status_code == 202
    # The hour's burst is spent: one more event over the sustained rate is refused.
    assert post(client, 1).status_code == 429
    assert count(app) == 25


def test_ipv6_networks_are_counted_per_48(make_app, frozen_clock):
    app = make_app(ANALYTICS_RATE_LIMIT="3/minute", ANALYTICS_RATE_LIMIT_BURST=None)
    client = app.test_client()
    assert post(client, 2, ip="2001:db8:1:aaaa::1").status_code == 202
    assert post(client, 1, ip="2001:db8:1:bbbb::2").status_code == 202
    assert post(client, 1, ip="2001:db8:1:cccc::3").status_code == 429
    assert post(client, 1, ip="2001:db8:2::1").status_code == 202


def test_a_batch_over_the_limit_is_refused_whole(make_app, frozen_clock):
    app = make_app(ANALYTICS_RATE_LIMIT="10/minute", ANALYTICS_RATE_LIMIT_BURST=None)
    assert post(app.test_client(), 11).status_code == 429
    assert count(app) == 0


@pytest.mark.parametrize("trusted", [0, 1], ids=["untrusted", "one-proxy"])
def test_forwarded_for_counts_only_behind_configured_proxies(make_app, frozen_clock, trusted):
    app = make_app(
        ANALYTICS_RATE_LIMIT="4/minute",
        ANALYTICS_RATE_LIMIT_BURST=None,
        ANALYTICS_TRUSTED_PROXIES=trusted,
    )
    client = app.test_client()
    proxy = "10.0.0.1"
    answers = [post(client, forwarded=f"198.51.{i}.7", ip=proxy).status_code for i in range(8)]
    if trusted:
        # Each forwarded client is a network of its own behind the trusted proxy.
        assert answers == [202] * 8
        assert [post(client, forwarded="198.51.0.99", ip=proxy).status_code for _ in range(4)] == [
            202,
            202,
            202,
            429,
        ]
    else:
        # A spoofed header changes nothing: every request is the proxy's network.
        assert answers == [202] * 4 + [429] * 4


def test_rate_limit_can_be_turned_off(make_app):
    app = make_app(ANALYTICS_RATE_LIMIT=None)
    client = app.test_client()
    assert all(post(client, 50).status_code == 202 for _ in range(15))


def test_bad_rate_limit_settings_fail_early(make_app):
    from flask_analytics import ConfigError

    with pytest.raises(ConfigError, match="ANALYTICS_RATE_LIMIT 'lots'"):
        make_app(ANALYTICS_RATE_LIMIT="lots")
    with pytest.raises(ConfigError, match="ANALYTICS_RATE_LIMIT_BURST 'many'"):
        make_app(ANALYTICS_RATE_LIMIT_BURST="many")
    with pytest.raises(ConfigError, match="ANALYTICS_RATE_LIMIT_STORAGE"):
        make_app(ANALYTICS_RATE_LIMIT_STORAGE="nosuch://x")


def settings(**overrides):
    return load_settings({**DEFAULTS, **overrides})


def test_counters_go_to_the_apps_redis_when_there_is_one():
    assert DEFAULTS["ANALYTICS_RATE_LIMIT"] == "600/minute"
    assert DEFAULTS["ANALYTICS_RATE_LIMIT_BURST"] == "300/hour"
    assert settings().rate_limit_storage == "memory://"
    jobs = settings(ANALYTICS_REDIS_URL="redis://jobs:6379/1")
    assert jobs.rate_limit_storage == "redis://jobs:6379/1"
    buffer = settings(ANALYTICS_INGEST_BUFFER="redis", ANALYTICS_BUFFER_REDIS_URL="redis://b/2")
    assert buffer.rate_limit_storage == "redis://b/2"
    unix = settings(ANALYTICS_REDIS_URL="unix:///run/redis.sock?db=0")
    assert unix.rate_limit_storage == "redis+unix:///run/redis.sock?db=0"
    explicit = settings(
        ANALYTICS_REDIS_URL="redis://jobs", ANALYTICS_RATE_LIMIT_STORAGE="memory://"
    )
    assert explicit.rate_limit_storage == "memory://"


def test_memory_counters_are_per_process(make_app, frozen_clock):
    # Two app objects stand for two processes: with memory storage each counts alone.
    config = {"ANALYTICS_RATE_LIMIT": "2/minute", "ANALYTICS_RATE_LIMIT_BURST": None}
    one, two = make_app(**config), make_app(**config)
    assert post(one.test_client(), 2).status_code == 202
    assert post(two.test_client(), 2).status_code == 202
    assert post(one.test_client(), 1).status_code == 429


@pytest.fixture
def redis_limits():
    """Config of apps whose counters live in the shared Redis, under a namespace (the
    queue name) of this test's own, so no other run's counters are seen."""
    redis_or_skip().close()
    return {
        "ANALYTICS_REDIS_URL": REDIS_URL,
        "ANALYTICS_QUEUE": f"ratelimit-{uuid.uuid4().hex[:12]}",
        "ANALYTICS_RATE_LIMIT": "6/minute",
        "ANALYTICS_RATE_LIMIT_BURST": "2/hour",
    }


def test_redis_counters_are_shared_between_app_instances(make_app, redis_limits):
    one, two = make_app(**redis_limits), make_app(**redis_limits)
    assert post(one.test_client(), 5, ua=f"{DESKTOP_UA} a").status_code == 202
    assert post(two.test_client(), 1, ua=f"{MOBILE_UA} b").status_code == 202  # the 6th
    assert post(two.test_client(), 2, ua="curl/8").status_code == 202  # the burst of 2
    assert post(two.test_client(), 1).status_code == 429
    assert post(one.test_client(), 1, ua="curl/8").status_code == 429
    # An app with another queue on the same Redis is another deployment: its own counters.
    other = make_app(**{**redis_limits, "ANALYTICS_QUEUE": redis_limits["ANALYTICS_QUEUE"] + "x"})
    assert post(other.test_client(), 1).status_code == 202


CHILD = """
import json, sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_analytics import Analytics

config = json.loads(sys.argv[1])
app = Flask("child")
app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
db = SQLAlchemy(app)
Analytics(app, db=db)
with app.app_context():
    db.create_all()
client = app.test_client()
for i in range(int(sys.argv[2])):
    answer = client.post(
        "/_analytics/collect",
        json={"url": "http://localhost/child"},
        headers={"User-Agent": f"child/{i}"},
        environ_base={"REMOTE_ADDR": "203.0.113.200"},
    )
    print(answer.status_code)
"""


@SQLITE_ONLY
def test_redis_counters_are_shared_between_processes(make_app, redis_limits):
    import json

    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), json.dumps(redis_limits), "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert child.stdout.split() == ["202"] * 5, child.stderr
    app = make_app(**redis_limits)
    # The child used 5 of 6 + 2: this process has 3 left for the same network.
    answers = [post(app.test_client(), ip="203.0.113.1").status_code for _ in range(5)]
    assert answers == [202, 202, 202, 429, 429]


def test_unreachable_redis_counter_does_not_stop_collection(make_app):
    app = make_app(
        ANALYTICS_RATE_LIMIT="4/minute", ANALYTICS_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0"
    )
    response = post(app.test_client(), 2)
    assert response.status_code == 202
    assert count(app) == 2
