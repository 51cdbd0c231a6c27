"""Archive and purge of raw events (placeholder: lands with the jobs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .extension import AnalyticsState


def archive(
    state: AnalyticsState,
    *,
    older_than_days: int | None = None,
    batch_size: int = 10_000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Any:
    raise NotImplementedError


def purge(
    state: AnalyticsState, *, older_than_days: int | None = None, dry_run: bool = False
) -> Any:
    raise NotImplementedError
