"""Per-visitor rate limit of the collect endpoint (429), in memory and in Redis."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from ..conftest import DESKTOP_UA, MOBILE_UA, REDIS_URL, collect_payload


def count(app):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        return ext.db.session.scalar(sa.select(sa.func.count()).select_from(ext.Event))


def post(client, n=1, ip="203.0.113.5", ua=DESKTOP_UA):
    return client.post(
        "/_analytics/collect",
        json=[collect_payload() for _ in range(n)],
        headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_flood_from_one_visitor_gets_429_and_nothing_stored(make_app):
    app = make_app(ANALYTICS_RATE_LIMIT="5/minute")
    client = app.test_client()
    assert post(client, 3).status_code == 202
    assert post(client, 2).status_code == 202
    limited = post(client, 1)
    assert limited.status_code == 429
    assert "rate limit" in limited.get_json()["error"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert count(app) == 5
    # Another visitor (another /24, or another user agent) is not affected.
    assert post(client, 1, ip="198.51.100.5").status_code == 202
    assert post(client, 1, ua=MOBILE_UA).status_code == 202
    # The same /24 is the same visitor: anonymization happens before counting.
    assert post(client, 1, ip="203.0.113.77").status_code == 429
    assert count(app) == 7


def test_a_batch_over_the_limit_is_refused_whole(make_app):
    app = make_app(ANALYTICS_RATE_LIMIT="10/minute")
    assert post(app.test_client(), 11).status_code == 429
    assert count(app) == 0


def test_rate_limit_can_be_turned_off(make_app):
    app = make_app(ANALYTICS_RATE_LIMIT=None)
    client = app.test_client()
    assert all(post(client, 50).status_code == 202 for _ in range(15))


def test_bad_rate_limit_setting_fails_early(make_app):
    from flask_analytics import ConfigError

    with pytest.raises(ConfigError, match="ANALYTICS_RATE_LIMIT 'lots'"):
        make_app(ANALYTICS_RATE_LIMIT="lots")
    with pytest.raises(ConfigError, match="ANALYTICS_RATE_LIMIT_STORAGE"):
        make_app(ANALYTICS_RATE_LIMIT_STORAGE="nosuch://x")


def test_redis_counters_are_shared_between_processes(make_app):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    # A per-test user agent keeps this test's counters apart from any other run's.
    ua = f"{DESKTOP_UA} run/{uuid.uuid4()}"
    one = make_app(ANALYTICS_RATE_LIMIT="4/minute", ANALYTICS_RATE_LIMIT_STORAGE=REDIS_URL)
    two = make_app(ANALYTICS_RATE_LIMIT="4/minute", ANALYTICS_RATE_LIMIT_STORAGE=REDIS_URL)
    assert post(one.test_client(), 3, ua=ua).status_code == 202
    assert post(two.test_client(), 1, ua=ua).status_code == 202
    assert post(two.test_client(), 1, ua=ua).status_code == 429
    assert post(one.test_client(), 1, ua=ua).status_code == 429


def test_unreachable_redis_counter_does_not_stop_collection(make_app):
    app = make_app(
        ANALYTICS_RATE_LIMIT="4/minute", ANALYTICS_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0"
    )
    response = post(app.test_client(), 2)
    assert response.status_code == 202
    assert count(app) == 2
