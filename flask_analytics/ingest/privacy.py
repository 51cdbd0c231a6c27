"""IP handling, daily salts and the cookieless visitor hash.

The raw client IP lives only in memory for the length of one request: it is checked
against the excluded networks, anonymized, and then never used again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..dialects import insert_ignore

#: Salts of days before "yesterday" (local time) are deleted: a salt lives at most 48 h.
SALT_KEEP_DAYS = 1


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


def anonymize_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """IPv4 with the last octet zeroed, IPv6 truncated to /48; "" when unknown."""
    if addr is None:
        return ""
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


def visitor_hash(salt: bytes, anon_ip: str, user_agent: str, hostname: str) -> int:
    """Keyed BLAKE2b of the anonymized IP, user agent and hostname: a signed 64-bit int."""
    digest = hashlib.blake2b(
        f"{anon_ip}\x00{user_agent}\x00{hostname}".encode("utf-8", "surrogatepass"),
        key=salt,
        digest_size=8,
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class SaltStore:
    """Random per-day salts, stored in ``analytics_salt`` and cached per process.

    Every process of a deployment agrees on a day's salt because the first one to need it
    inserts it (conflicts ignored) and all of them read back the stored row.
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

    def salt_for(self, day: dt.date) -> bytes:
        """The salt of local ``day``, created when it does not exist yet."""
        salt = self._cache.get(day)
        if salt is not None:
            return salt
        with self._lock:
            today = self._today()
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
            salt = bytes(row[0])
            self._cache = {
                d: s
                for d, s in self._cache.items()
                if d >= today - dt.timedelta(days=SALT_KEEP_DAYS)
            }
            self._cache[day] = salt
            return salt

    def expire(self) -> int:
        """Delete salts older than yesterday (local); returns how many were deleted."""
        today = self._today()
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
