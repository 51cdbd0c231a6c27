"""The README documents every configuration key, with its default."""

from __future__ import annotations

import pytest

from flask_analytics.config import DEFAULTS

from .support.processes import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_config_key_is_in_the_readme(key):
    assert f"`{key}`" in README, f"README.md does not document {key}"
