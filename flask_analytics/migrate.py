"""Flask-Migrate (Alembic) support: generated migrations import the package's own types.

Alembic writes a column of a type of the package as ``flask_analytics.models.RevenueAmount()``
and does not import that module itself. :func:`render_item` adds the import to the
generated script. ``Analytics.init_app`` installs it on a Flask-Migrate already set up on
the app (``migrate.init_app(app, db)`` before ``analytics.init_app(app)``); otherwise pass
it yourself: ``Migrate(app, db, render_item=flask_analytics.migrate.render_item)``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from .models import RevenueAmount

RenderItem = Callable[[str, Any, Any], Any]


def render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Alembic's ``render_item`` hook: import :mod:`flask_analytics.models` where a
    migration uses one of its types; everything is rendered as Alembic does."""
    if type_ == "type" and isinstance(obj, RevenueAmount):
        autogen_context.imports.add("import flask_analytics.models")
    return False


def install(configure_args: MutableMapping[str, Any]) -> None:
    """Add :func:`render_item` to Flask-Migrate's ``configure_args``, before the host's
    own hook if it has one (which then renders everything as before)."""
    host: RenderItem | None = configure_args.get("render_item")
    if host is render_item or getattr(host, "flask_analytics", False):
        return  # installed already (another app of the same Migrate)
    if host is None:
        configure_args["render_item"] = render_item
        return

    def both(type_: str, obj: Any, autogen_context: Any) -> Any:
        render_item(type_, obj, autogen_context)
        return host(type_, obj, autogen_context)

    both.flask_analytics = True  # type: ignore[attr-defined]
    configure_args["render_item"] = both
