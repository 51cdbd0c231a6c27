"""Fixtures of these tests: a Paris app and the seeded data set."""

from __future__ import annotations

from ..support.seeded_stats import paris_app, seeded

__all__ = ["paris_app", "seeded"]
