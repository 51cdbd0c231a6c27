"""Who may read the numbers besides the host's access callback, and notes on them: share
links and API tokens (:mod:`.grants`), annotations (:mod:`.annotations`). No Flask here:
the dashboard, the CLI and the tests call the same functions."""

from __future__ import annotations

from .grants import (
    SHARE,
    TOKEN,
    Grant,
    GrantKind,
    create_grant,
    find_grant,
    hash_token,
    list_grants,
    revoke_grant,
)

__all__ = [
    "SHARE",
    "TOKEN",
    "Grant",
    "GrantKind",
    "create_grant",
    "find_grant",
    "hash_token",
    "list_grants",
    "revoke_grant",
]
