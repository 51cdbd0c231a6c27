"""IP handling, daily salts and the cookieless visitor hash.

The raw client IP lives only in memory for the length of one request: it is checked
against the excluded networks, anonymized, and then never used again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..core.dialects import insert_ignore

#: Salts of days before "yesterday" (local time) are deleted: a salt lives at most 48 h.
SALT_KEEP_DAYS = 1
#: Seconds between attempts to copy a salt made while the database was down into it.
SALT_SYNC_INTERVAL = 30.0

log = logging.getLogger(__name__)


def parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``value`` (IPv4-mapped IPv6 unwrapped), or None when it is not one."""
    if not value:
        return None
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_ip(
    remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int
) -> str | None:
    """The client address, trusting ``trusted_proxies`` hops of X-Forwarded-For.

    With N trusted proxies the N-th address from the right is the client's, as in
    werkzeug's ProxyFix; a header with fewer entries than that is ignored as spoofed.
    """
    if trusted_proxies > 0 and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",")]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return remote_addr


#: Bits kept of an address: the /24 of IPv4, the /48 of IPv6.
_IPV4_KEEP = (2**32 - 1) ^ (2**8 - 1)
_IPV6_KEEP = (2**128 - 1) ^ (2**80 - 1)


def anonymize_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """IPv4 with the last octet zeroed, IPv6 truncated to /48; "" when unknown."""
    if addr is None:
        return ""
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(addr) & _IPV4_KEEP))
    return str(ipaddress.IPv6Address(int(addr) & _IPV6_KEEP))


def visitor_hash(salt: bytes, anon_ip: str, user_agent: str, hostname: str) -> int:
    """Keyed BLAKE2b of the anonymized IP, user agent and hostname: a signed 64-bit int."""
    digest = hashlib.blake2b(
        f"{anon_ip}\x00{user_agent}\x00{hostname}".encode("utf-8", "surrogatepass"),
        key=salt,
        digest_size=8,
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class SaltMirrorUnavailable(Exception):
    """The salt mirror (Redis) could not be reached."""


class RedisSaltMirror:
    """The daily salts kept in Redis too, for buffered ingestion.

    With ``ANALYTICS_INGEST_BUFFER = "redis"`` the collect endpoint must not need the
    database, not even for the first request of a process or of a day. A day's salt is
    then looked up in Redis first; the database row stays the record (and the fallback
    while Redis is down). Each key expires when its day's salt must be gone (the end of
    the next local day), as the database rows are deleted.
    """

    def __init__(
        self,
        redis: Any,
        prefix: str,
        expires_at: Callable[[dt.date], dt.datetime],
        now: Callable[[], dt.datetime],
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self._expires_at = expires_at
        self._now = now

    def key(self, day: dt.date) -> str:
        return f"{self.prefix}:{day.isoformat()}"

    def get(self, day: dt.date) -> bytes | None:
        """The salt of ``day`` in Redis, or None."""
        from redis.exceptions import RedisError

        try:
            value = self.redis.get(self.key(day))
        except (OSError, RedisError) as exc:
            raise SaltMirrorUnavailable(str(exc)) from exc
        return bytes(value) if value is not None else None

    def put(self, day: dt.date, salt: bytes) -> bytes | None:
        """Store ``salt`` unless Redis has one for ``day``; returns the one Redis keeps
        (None when the day's salt is already past its lifetime)."""
        from redis.exceptions import RedisError

        until = int(self._expires_at(day).timestamp())
        if until <= self._now().timestamp():
            return None
        key = self.key(day)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(key, salt, nx=True, exat=until)
            pipe.get(key)
            _, value = pipe.execute()
        except (OSError, RedisError) as exc:
            raise SaltMirrorUnavailable(str(exc)) from exc
        return bytes(value) if value is not None else None


class SaltStore:
    """Random per-day salts, stored in ``analytics_salt`` and cached per process.

    Every process of a deployment agrees on a day's salt because the first one to need it
    inserts it (conflicts ignored) and all of them read back the stored row.

    With a ``mirror`` (:class:`RedisSaltMirror`, buffered ingestion) Redis is asked first
    and is authoritative while it is reachable: a salt missing there is taken from the
    database (created there when new) and published to Redis; when the database is
    unreachable, a new salt is created in Redis alone and copied to the database later
    (:data:`SALT_SYNC_INTERVAL`, from a background thread). While Redis is unreachable,
    the database alone is used, as without a mirror.
    """

    def __init__(
        self,
        salt_model: Any,
        engine: Callable[[], sa.Engine],
        today: Callable[[], dt.date],
        now: Callable[[], dt.datetime],
    ) -> None:
        self._table: sa.Table = salt_model.__table__
        self._engine = engine
        self._today = today
        self._now = now
        self._cache: dict[dt.date, bytes] = {}
        self._lock = threading.Lock()
        self.mirror: RedisSaltMirror | None = None
        #: Salts made in Redis alone while the database was down, to copy there.
        self._unsynced: dict[dt.date, bytes] = {}
        self._next_sync = 0.0

    def salt_for(self, day: dt.date) -> bytes:
        """The salt of local ``day``, created when it does not exist yet."""
        salt = self._cache.get(day)
        if salt is not None:
            if self._unsynced and time.monotonic() >= self._next_sync:
                self._start_sync(self._engine())
            return salt
        with self._lock:
            today = self._today()
            salt = self._cache.get(day)
            if salt is None:
                salt = self._lookup(day, today) if self.mirror else self._from_database(day, today)
            self._cache = {
                d: s
                for d, s in self._cache.items()
                if d >= today - dt.timedelta(days=SALT_KEEP_DAYS)
            }
            self._cache[day] = salt
            return salt

    def _from_database(self, day: dt.date, today: dt.date) -> bytes:
        table = self._table
        with self._engine().begin() as conn:
            row = conn.execute(sa.select(table.c.salt).where(table.c.date == day)).first()
            if row is None:
                conn.execute(
                    insert_ignore(table, conn.dialect.name, ["date"]),
                    {"date": day, "salt": os.urandom(32), "created_at": self._now()},
                )
                row = conn.execute(sa.select(table.c.salt).where(table.c.date == day)).one()
                if day == today:
                    self._expire(conn, today)
        return bytes(row[0])

    def _lookup(self, day: dt.date, today: dt.date) -> bytes:
        """Redis first, then the database (see the class docstring)."""
        mirror = self.mirror
        assert mirror is not None
        try:
            salt = mirror.get(day)
        except SaltMirrorUnavailable:
            return self._from_database(day, today)
        if salt is not None:
            return salt
        try:
            salt = self._from_database(day, today)
        except sa.exc.OperationalError:
            # The database is down: Redis alone decides, the database gets a copy later.
            try:
                kept = mirror.put(day, os.urandom(32))
            except SaltMirrorUnavailable:
                kept = None
            if kept is None:
                raise
            self._unsynced[day] = kept
            self._next_sync = time.monotonic() + SALT_SYNC_INTERVAL
            log.warning("analytics: salt of %s created in Redis, the database is down", day)
            return kept
        try:
            kept = mirror.put(day, salt)
        except SaltMirrorUnavailable:
            return salt
        if kept is not None and kept != salt:
            # Redis got a salt while the database was down (made by another process):
            # Redis wins, the database row follows.
            self._unsynced[day] = kept
            self._sync(self._engine())
            return kept
        return salt

    def _store(self, engine: sa.Engine, day: dt.date, salt: bytes) -> None:
        """Make the database row of ``day`` hold ``salt``."""
        table = self._table
        with engine.begin() as conn:
            conn.execute(
                insert_ignore(table, conn.dialect.name, ["date"]),
                {"date": day, "salt": salt, "created_at": self._now()},
            )
            conn.execute(sa.update(table).where(table.c.date == day).values(salt=salt))

    def _sync(self, engine: sa.Engine) -> bool:
        """Copy the salts made in Redis alone to the database; False while it is down."""
        cutoff = self._today() - dt.timedelta(days=SALT_KEEP_DAYS)
        for day, salt in list(self._unsynced.items()):
            if day >= cutoff:
                try:
                    self._store(engine, day, salt)
                except sa.exc.OperationalError:
                    return False
            self._unsynced.pop(day, None)
        return True

    def _start_sync(self, engine: sa.Engine) -> None:
        # The engine is resolved here: the thread has no application context.
        self._next_sync = time.monotonic() + SALT_SYNC_INTERVAL

        def run() -> None:
            with self._lock:
                try:
                    self._sync(engine)
                except sa.exc.SQLAlchemyError:  # a background thread: report, retry later
                    log.exception("analytics: copying salts to the database failed")

        threading.Thread(target=run, name="analytics-salt-sync", daemon=True).start()

    def expire(self) -> int:
        """Delete salts older than yesterday (local); returns how many were deleted."""
        today = self._today()
        with self._lock:
            self._sync(self._engine())
        with self._lock, self._engine().begin() as conn:
            deleted = self._expire(conn, today)
            self._cache = {
                d: s
                for d, s in self._cache.items()
                if d >= today - dt.timedelta(days=SALT_KEEP_DAYS)
            }
        return deleted

    def _expire(self, conn: sa.Connection, today: dt.date) -> int:
        cutoff = today - dt.timedelta(days=SALT_KEEP_DAYS)
        result = conn.execute(sa.delete(self._table).where(self._table.c.date < cutoff))
        return int(result.rowcount or 0)
