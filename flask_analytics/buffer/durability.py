"""Whether the buffer's Redis keeps what the collect endpoint acknowledged.

In buffered mode the endpoint answers 202 once an event is in Redis, before the
database has it: a Redis that does not persist it, or evicts it under memory pressure,
loses acknowledged events (and the tracker never sends them again). :func:`check` reads
the server's persistence and eviction settings (``CONFIG GET``); the app checks at
start-up (``ANALYTICS_BUFFER_DURABILITY``: warn, refuse or off) and
``flask analytics status`` shows the result.

What counts as durable (docs/scaling.md, "Redis for the ingest buffer"):

- ``appendonly yes`` with ``appendfsync everysec`` (at most about a second of events lost
  if the machine, not just Redis, goes down) or ``always``; ``appendfsync no`` leaves the
  flush to the kernel (tens of seconds at risk);
- without the AOF, RDB snapshots (``save``) lose every event since the last snapshot, and
  with neither a restart loses the whole buffer;
- ``maxmemory-policy noeviction``: any other policy may evict the stream (``allkeys-*``)
  or the day's salt (``volatile-*``) when Redis is full, where noeviction refuses the
  append and the endpoint writes directly instead.

Managed Redis services often refuse ``CONFIG``: the result is then "unknown", and only
the provider's settings can say.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from ..errors import ConfigError

log = logging.getLogger(__name__)

#: The settings read, in the order they are reported.
SETTINGS = ("appendonly", "appendfsync", "save", "maxmemory-policy")


@dataclass(frozen=True)
class Durability:
    """What the buffer's Redis does with acknowledged events."""

    #: The settings read (name -> value); empty when they could not be read.
    settings: dict[str, str]
    #: Why acknowledged events could be lost, one sentence each (empty: durable).
    risks: tuple[str, ...] = ()
    #: Why the settings could not be read (CONFIG refused, Redis unreachable), else None.
    error: str | None = None

    @property
    def verdict(self) -> str:
        """ "durable", "at risk" or "unknown"."""
        if self.error is not None:
            return "unknown"
        return "at risk" if self.risks else "durable"

    def describe(self) -> str:
        """One line: the verdict and the settings (or why they are unknown)."""
        if self.error is not None:
            return f"unknown ({self.error})"
        shown = ", ".join(f"{name} {self.settings[name]!r}" for name in SETTINGS)
        return f"{self.verdict} ({shown})"


def assess(settings: dict[str, str]) -> Durability:
    """The risks of a server with these settings (``CONFIG GET`` values)."""
    risks = []
    if settings["appendonly"] != "yes":
        if settings["save"].strip():
            risks.append(
                "appendonly is no: only RDB snapshots (save "
                f"{settings['save']!r}) persist the buffer, so a crash loses every event "
                "acknowledged since the last snapshot"
            )
        else:
            risks.append(
                "no persistence (appendonly no, no save points): a restart of Redis loses "
                "every buffered event"
            )
    elif settings["appendfsync"] not in ("everysec", "always"):
        risks.append(
            f"appendfsync is {settings['appendfsync']}: the kernel decides when the AOF "
            "reaches the disk, so a machine crash loses tens of seconds of events"
        )
    policy = settings["maxmemory-policy"]
    if policy != "noeviction":
        risks.append(
            f"maxmemory-policy is {policy}: a full Redis may evict buffered events or the "
            "day's salt (noeviction makes the endpoint write directly instead)"
        )
    return Durability(settings=settings, risks=tuple(risks))


def check(redis: Redis) -> Durability:
    """Read the server's settings and assess them; "unknown" when they cannot be read."""
    try:
        pipe = redis.pipeline(transaction=False)
        for name in SETTINGS:
            pipe.config_get(name)
        replies = pipe.execute()
    except RedisError as exc:
        return Durability(settings={}, error=f"CONFIG GET failed: {exc}")
    settings: dict[str, str] = {}
    for name, reply in zip(SETTINGS, replies, strict=True):
        value = reply.get(name, reply.get(name.encode()))
        if value is None:
            return Durability(settings={}, error=f"the server does not report {name}")
        settings[name] = value.decode() if isinstance(value, bytes) else str(value)
    return assess(settings)


def check_at_start(redis: Redis, mode: str, where: str) -> Durability | None:
    """The start-up check of ``ANALYTICS_BUFFER_DURABILITY``: logs a warning for risks or
    an unknown result; with "refuse", raises :class:`ConfigError` for known risks."""
    if mode == "off":
        return None
    result = check(redis)
    if result.error is not None:
        log.warning(
            "analytics buffer: cannot tell whether the Redis at %s keeps acknowledged events "
            "(%s); check its persistence (appendonly yes) and maxmemory-policy (noeviction) "
            "with your provider. See docs/scaling.md.",
            where,
            result.error,
        )
    elif result.risks:
        message = (
            f"the Redis of the ingest buffer ({where}) may lose events the collect endpoint "
            f"acknowledged: {'; '.join(result.risks)}. Set appendonly yes, appendfsync "
            "everysec and maxmemory-policy noeviction (docs/scaling.md)"
        )
        if mode == "refuse":
            raise ConfigError(
                f"ANALYTICS_BUFFER_DURABILITY is 'refuse' and {message}, or set "
                "ANALYTICS_BUFFER_DURABILITY = 'warn' to accept the risk."
            )
        log.warning("analytics buffer: %s.", message)
    return result
