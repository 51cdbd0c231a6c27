"""Fixtures of the buffer tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ..conftest import redis_or_skip
from ..support.redis_keys import delete_keys


@pytest.fixture
def stream() -> Iterator[str]:
    """A stream name of this test's own on the shared Redis, deleted afterwards."""
    connection = redis_or_skip()
    name = f"fa-test-buffer-{uuid.uuid4().hex[:12]}"
    yield name
    delete_keys(connection, name)
    connection.close()
