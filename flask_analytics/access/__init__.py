"""Who may read the numbers besides the host's access callback, and notes on them: share
links and API tokens (:mod:`.grants`), annotations (:mod:`.annotations`). No Flask here:
the dashboard, the CLI and the tests call the same functions."""

from __future__ import annotations

from .annotations import (
    Annotation,
    BadAnnotation,
    create_annotation,
    delete_annotation,
    list_annotations,
    update_annotation,
)
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
    "Annotation",
    "BadAnnotation",
    "Grant",
    "GrantKind",
    "create_annotation",
    "create_grant",
    "delete_annotation",
    "find_grant",
    "hash_token",
    "list_annotations",
    "list_grants",
    "revoke_grant",
    "update_annotation",
]
