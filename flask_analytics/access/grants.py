"""Share links and API tokens: secrets handed out once, kept only as their SHA-256.

A grant is made with :func:`create_grant`, which returns the token (shown once: the
database holds ``sha256(token)`` only, so a leaked table opens nothing) and the stored
row. :func:`find_grant` answers the live grant of a token: not revoked, not expired at
the clock's now; an API token's use is recorded (``last_used_at``). Tokens are
``secrets.token_urlsafe(32)`` (256 random bits), so a hash lookup is as safe as a
constant-time comparison: nobody can aim at a hash prefix without the preimage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import sqlalchemy as sa

from ..models import ACCESS_NAME_MAX

if TYPE_CHECKING:
    from ..core.context import Context

#: The two kinds of grant.
GrantKind = Literal["share", "token"]
SHARE: Final = "share"
TOKEN: Final = "token"


@dataclass(frozen=True)
class Grant:
    """One share link or API token as stored (never its token)."""

    kind: str
    id: int
    name: str
    #: The scope as JSON (``reports.scope.Scope.to_json``), None: everything.
    scope: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def live(self, now: dt.datetime) -> bool:
        """Neither revoked nor expired at ``now`` (naive UTC)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def hash_token(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _table(state: Context, kind: str) -> sa.Table:
    model = state.models.ShareLink if kind == SHARE else state.models.ApiToken
    table: sa.Table = model.__table__
    return table


def _grant(kind: str, row: Any) -> Grant:
    return Grant(
        kind=kind,
        id=row.id,
        name=row.name,
        scope=row.scope,
        created_at=row.created_at,
        expires_at=getattr(row, "expires_at", None),
        revoked_at=row.revoked_at,
        last_used_at=getattr(row, "last_used_at", None),
    )


def create_grant(
    state: Context,
    kind: GrantKind,
    name: str,
    *,
    scope: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[str, Grant]:
    """A new share link or API token: (the token, shown once; the stored grant)."""
    if not name or len(name) > ACCESS_NAME_MAX:
        raise ValueError(f"A name is 1 to {ACCESS_NAME_MAX} characters long.")
    if kind == TOKEN and expires_at is not None:
        raise ValueError("API tokens do not expire; revoke them.")
    token = secrets.token_urlsafe(32)
    table = _table(state, kind)
    values: dict[str, Any] = {
        "token_hash": hash_token(token),
        "name": name,
        "scope": scope,
        "created_at": state.clock.utcnow().replace(microsecond=0),
    }
    if kind == SHARE:
        values["expires_at"] = expires_at
    with state.engine().begin() as conn:
        row = conn.execute(sa.insert(table).values(**values).returning(*table.c)).one()
    return token, _grant(kind, row)


def list_grants(state: Context, kind: GrantKind) -> list[Grant]:
    """Every share link or API token, oldest first (revoked and expired ones too)."""
    table = _table(state, kind)
    with state.engine().connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    return [_grant(kind, r) for r in rows]


def revoke_grant(state: Context, kind: GrantKind, ident: int) -> bool:
    """Revoke grant ``ident`` now; False when there is no such live grant."""
    table = _table(state, kind)
    with state.engine().begin() as conn:
        done = conn.execute(
            sa.update(table)
            .where(table.c.id == ident, table.c.revoked_at.is_(None))
            .values(revoked_at=state.clock.utcnow())
        )
    return bool(done.rowcount)


def find_grant(state: Context, kind: GrantKind, token: str) -> Grant | None:
    """The live grant ``token`` opens, or None; an API token's use is recorded."""
    if not token or len(token) > 200:
        return None
    table = _table(state, kind)
    now = state.clock.utcnow()
    digest = hash_token(token)
    with state.engine().begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.token_hash == digest)).one_or_none()
        if row is None:
            return None
        grant = _grant(kind, row)
        if not grant.live(now):
            return None
        if kind == TOKEN:
            conn.execute(sa.update(table).where(table.c.id == grant.id).values(last_used_at=now))
    return grant
