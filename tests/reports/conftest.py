"""Fixtures of the query engine's tests: a Paris app and the seeded data set."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from ..clock import FrozenClock
from ..support.seeded_stats import TIMEZONE, Seeded, seed


@pytest.fixture
def paris_app(make_app: Any) -> Flask:
    return make_app(ANALYTICS_TIMEZONE=TIMEZONE)


@pytest.fixture
def seeded(paris_app: Flask, frozen_clock: FrozenClock) -> Seeded:
    """The seeded data set, with time frozen while the test reads it: the app's "today"
    is the day the data was made for."""
    return seed(paris_app, paris_app.extensions["analytics_test"])
