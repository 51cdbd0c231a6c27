"""The web layer: the collect endpoint, the tracker script and the dashboard."""

from __future__ import annotations

from pathlib import Path

#: The package's templates (``analytics/*.html``) and static files (``analytics/*``).
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "analytics"
