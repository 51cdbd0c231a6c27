"""The README documents every configuration key, with its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_analytics.config import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_config_key_is_in_the_readme(key):
    assert f"`{key}`" in README, f"README.md does not document {key}"
