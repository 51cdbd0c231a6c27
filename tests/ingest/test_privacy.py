"""Visitor identity: anonymized IPs, daily salts, the keyed hash."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from flask_analytics.ingest import privacy
from flask_analytics.state import current_state

from ..conftest import DESKTOP_UA, MOBILE_UA, REDIS_URL, redis_or_skip


@pytest.mark.parametrize(
    ("raw", "anon"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:1234:5678::1", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        (None, ""),
        ("garbage", ""),
    ],
)
def test_anonymize_ip(raw, anon):
    assert privacy.anonymize_ip(privacy.parse_ip(raw)) == anon


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_anonymize_ip_keeps_the_slash24_or_slash48_network(addr):
    prefix = 24 if addr.version == 4 else 48
    network = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        network = ipaddress.ip_network(f"{addr.ipv4_mapped}/24", strict=False)
    assert privacy.anonymize_ip(privacy.parse_ip(str(addr))) == str(network.network_address)


def test_client_ip_proxy_hops():
    assert privacy.client_ip("10.0.0.1", "1.1.1.1", 0) == "10.0.0.1"
    assert privacy.client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 1) == "2.2.2.2"
    assert privacy.client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 2) == "1.1.1.1"
    assert privacy.client_ip("10.0.0.1", "2.2.2.2", 2) == "10.0.0.1"


def test_visitor_hash_is_keyed():
    a = privacy.visitor_hash(b"a" * 32, "203.0.113.0", DESKTOP_UA, "example.com")
    assert a == privacy.visitor_hash(b"a" * 32, "203.0.113.0", DESKTOP_UA, "example.com")
    assert a != privacy.visitor_hash(b"b" * 32, "203.0.113.0", DESKTOP_UA, "example.com")
    assert a != privacy.visitor_hash(b"a" * 32, "203.0.113.0", DESKTOP_UA, "other.com")
    assert -(2**63) <= a < 2**63


def track(ext, when, ip="203.0.113.10", ua=DESKTOP_UA):
    return ext.track("pageview", url="https://example.com/", ip=ip, user_agent=ua, timestamp=when)


def test_same_slash24_and_ua_same_day_is_one_visitor(app, analytics):
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        a = track(analytics, now, ip="203.0.113.10")
        b = track(analytics, now, ip="203.0.113.250")
        c = track(analytics, now, ip="203.0.114.10")
        d = track(analytics, now, ip="203.0.113.10", ua=MOBILE_UA)
    assert a.visitor_id == b.visitor_id
    assert len({a.visitor_id, c.visitor_id, d.visitor_id}) == 3


@pytest.mark.clock
def test_next_day_is_a_new_visitor_and_old_salts_are_deleted(make_app, frozen_clock):
    app = make_app(ANALYTICS_TIMEZONE="Europe/Berlin")
    ext = app.extensions["analytics_test"]
    tz = ext.state(app).settings.timezone
    now = frozen_clock.now().astimezone(tz)
    today = now.date()
    at = {
        offset: dt.datetime.combine(today - dt.timedelta(days=offset), dt.time(12), tzinfo=tz)
        for offset in (1, 2)
    }
    with app.app_context():
        old = track(ext, at[2])
        yesterday = track(ext, at[1])
        # Local midnight and now: both today and never in the future, whatever the hour.
        today_event = track(ext, dt.datetime.combine(today, dt.time(0), tzinfo=tz))
        again = track(ext, now)
        salts = dict(ext.db.session.execute(sa.select(ext.Salt.date, ext.Salt.salt)).all())
    assert today_event.visitor_id == again.visitor_id
    assert len({old.visitor_id, yesterday.visitor_id, today_event.visitor_id}) == 3
    # The salt of two days ago is gone, yesterday's and today's remain.
    assert sorted(salts) == [today - dt.timedelta(days=1), today]
    # Expiry also runs on demand (the daily job) and deletes what a past import created.
    with app.app_context():
        track(ext, at[2])
        assert ext.state().salts.expire() == 1
        dates = ext.db.session.scalars(sa.select(ext.Salt.date)).all()
    assert sorted(dates) == [today - dt.timedelta(days=1), today]


@pytest.mark.clock
def test_salt_is_the_local_day_of_the_event(make_app, frozen_clock):
    app = make_app(ANALYTICS_TIMEZONE="America/New_York")
    ext = app.extensions["analytics_test"]
    tz = ext.state(app).settings.timezone
    today = frozen_clock.today(tz)
    # 23:30 and 00:00 local of the same visitor are on two local days. Today's event is
    # at its local midnight, so it is never in the future (track() refuses that), whatever
    # the time of day the test runs at.
    late = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(23, 30), tzinfo=tz)
    midnight = dt.datetime.combine(today, dt.time(0, 0), tzinfo=tz)
    with app.app_context():
        a = track(ext, late - dt.timedelta(hours=1))
        b = track(ext, late)
        c = track(ext, midnight)
    assert a.visitor_id == b.visitor_id != c.visitor_id


def test_salts_are_random_and_shared_between_apps_on_one_database(make_app):
    app1 = make_app()
    ext1 = app1.extensions["analytics_test"]
    day = dt.date(2026, 3, 1)
    with app1.app_context():
        salt = ext1.state().salts.salt_for(day)
        # A second process (a fresh store on the same table) reads the same salt.
        store = privacy.SaltStore(ext1.Salt, ext1.state().engine, lambda: day, privacy_now)
        assert store.salt_for(day) == salt
        assert ext1.state().salts.salt_for(day + dt.timedelta(days=1)) != salt
    assert len(salt) == 32


def privacy_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@pytest.mark.redis
def test_buffered_mode_publishes_the_database_salt_to_redis(make_app):
    client = redis_or_skip()
    stream = f"fa-salt-test-{uuid.uuid4().hex}"
    settings = {
        "ANALYTICS_INGEST_BUFFER": "redis",
        "ANALYTICS_BUFFER_REDIS_URL": REDIS_URL,
        "ANALYTICS_BUFFER_STREAM": stream,
    }
    direct = make_app()  # no mirror: the database alone
    buffered = make_app(**settings)
    day = dt.date.today()
    try:
        with direct.app_context():
            stored = current_state(direct).salts.salt_for(day)
        # Redis had none: the database's salt is taken and published, not a new one.
        with buffered.app_context():
            assert current_state(buffered).salts.salt_for(day) == stored
        assert client.get(f"{stream}:salt:{day.isoformat()}") == stored
    finally:
        client.delete(f"{stream}:salt:{day.isoformat()}")
        client.close()


@pytest.mark.redis
def test_buffered_mode_uses_the_database_salt_while_redis_is_down(make_app):
    buffered = make_app(
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens there
        ANALYTICS_BUFFER_STREAM=f"fa-salt-test-{uuid.uuid4().hex}",
    )
    direct = make_app()
    day = dt.date.today()
    with buffered.app_context():
        salt = current_state(buffered).salts.salt_for(day)
    with direct.app_context():
        assert current_state(direct).salts.salt_for(day) == salt
