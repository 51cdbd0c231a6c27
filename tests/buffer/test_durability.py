"""The buffer's Redis is checked for persistence and eviction at start-up and in
``flask analytics status`` (a real redis-server of the test's own, set with CONFIG SET)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from flask_analytics import ConfigError
from flask_analytics.buffer import durability
from flask_analytics.state import current_state

from ..support.servers import PrivateRedis

pytestmark = pytest.mark.redis


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The check reads Redis, not the database: SQLite is enough."""
    return f"sqlite:///{tmp_path / 'analytics.db'}"


DURABLE = {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
LOGGER = "flask_analytics.buffer.durability"


@pytest.fixture
def server(private_redis: PrivateRedis) -> Iterator[Redis]:
    """A client of the test's own redis-server (it starts without persistence)."""
    connection = Redis.from_url(private_redis.url)
    yield connection
    connection.close()


def configure(redis: Redis, **settings: str) -> None:
    for name, value in settings.items():
        redis.config_set(name.replace("_", "-"), value)


@pytest.fixture
def buffered(make_app: Callable[..., Flask], private_redis: PrivateRedis) -> Callable[..., Flask]:
    def factory(mode: str, url: str | None = None) -> Flask:
        return make_app(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=url or private_redis.url,
            ANALYTICS_BUFFER_STREAM=f"fa-durability-{uuid.uuid4().hex[:8]}",
            ANALYTICS_BUFFER_DURABILITY=mode,
        )

    return factory


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def status(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["analytics", "status"])


def test_a_durable_redis_passes_in_refuse_mode_and_status_says_so(
    server: Redis, buffered: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    configure(server, appendonly="yes", appendfsync="everysec", maxmemory_policy="noeviction")
    caplog.set_level(logging.WARNING, LOGGER)
    app = buffered("refuse")
    result = current_state(app).buffer.durability
    assert (result.verdict, result.risks) == ("durable", ())
    assert result.settings == {**DURABLE, "save": server.config_get("save")["save"]}
    assert warnings_of(caplog) == []
    shown = status(app)
    assert shown.exit_code == 0, shown.output
    assert "Ingest buffer durability: durable (appendonly 'yes', appendfsync 'everysec'" in (
        shown.output
    )


@pytest.mark.parametrize(
    ("settings", "risk"),
    [
        ({"appendonly": "no", "save": ""}, "no persistence (appendonly no, no save points)"),
        ({"appendonly": "no", "save": "3600 1"}, "only RDB snapshots (save '3600 1')"),
        ({"appendfsync": "no"}, "appendfsync is no: the kernel decides"),
        ({"maxmemory_policy": "allkeys-lru"}, "maxmemory-policy is allkeys-lru"),
        ({"maxmemory_policy": "volatile-ttl"}, "maxmemory-policy is volatile-ttl"),
    ],
    ids=["no-persistence", "rdb-only", "fsync-no", "allkeys-lru", "volatile-ttl"],
)
def test_a_risky_redis_is_refused_or_warned_about(
    server: Redis,
    buffered: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, str],
    risk: str,
) -> None:
    configure(server, appendonly="yes", appendfsync="everysec", maxmemory_policy="noeviction")
    configure(server, **settings)
    with pytest.raises(ConfigError, match="ANALYTICS_BUFFER_DURABILITY is 'refuse'") as refused:
        buffered("refuse")
    assert risk in str(refused.value)
    caplog.set_level(logging.WARNING, LOGGER)
    app = buffered("warn")  # the default
    (warning,) = warnings_of(caplog)
    assert risk in warning
    assert "may lose events the collect endpoint acknowledged" in warning
    assert current_state(app).buffer.durability.verdict == "at risk"
    shown = status(app)
    assert shown.exit_code == 0, shown.output
    assert "Ingest buffer durability: at risk (" in shown.output
    assert [line for line in shown.output.splitlines() if line.startswith("  - ")] == [
        f"  - {current_state(app).buffer.durability.risks[0]}."
    ]
    assert risk in shown.output


def test_warn_is_the_default_and_off_skips_the_check(
    server: Redis, make_app: Callable[..., Flask], buffered: Callable[..., Flask]
) -> None:
    configure(server, appendonly="no", save="")
    assert make_app().config["ANALYTICS_BUFFER_DURABILITY"] == "warn"
    assert current_state(buffered("off")).buffer.durability is None


def test_a_redis_that_refuses_config_is_unknown_not_refused(
    server: Redis,
    private_redis: PrivateRedis,
    buffered: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As on managed Redis services: the app's user may not run CONFIG.
    server.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-config")
    url = f"unix://app:pw@{private_redis.socket}?db=0"
    caplog.set_level(logging.WARNING, LOGGER)
    app = buffered("refuse", url)
    result = current_state(app).buffer.durability
    assert result.verdict == "unknown"
    assert "CONFIG GET failed" in result.error
    assert "permission" in result.error.lower()
    (warning,) = warnings_of(caplog)
    assert "cannot tell whether the Redis" in warning
    shown = status(app)
    assert shown.exit_code == 0, shown.output
    assert "Ingest buffer durability: unknown (CONFIG GET failed" in shown.output


def test_an_unreachable_redis_at_start_up_is_unknown(buffered: Callable[..., Flask]) -> None:
    app = buffered("refuse", "redis://127.0.0.1:1/0")
    assert current_state(app).buffer.durability.verdict == "unknown"


def test_bad_durability_setting_fails_early(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="ANALYTICS_BUFFER_DURABILITY must be 'warn', 'refuse'"):
        make_app(ANALYTICS_BUFFER_DURABILITY="maybe")


def test_assessment_of_settings_without_a_server() -> None:
    fine = {**DURABLE, "save": "3600 1"}
    assert durability.assess(fine).verdict == "durable"
    assert durability.assess({**fine, "appendfsync": "always"}).risks == ()
    both = durability.assess({**fine, "appendonly": "no", "maxmemory-policy": "allkeys-random"})
    assert len(both.risks) == 2
