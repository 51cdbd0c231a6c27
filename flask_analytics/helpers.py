"""Ready-made ``@analytics.enrich`` hooks.

``analytics.enrich(exclude_users(lambda user: user.is_admin))`` stops counting your own
visits: events sent while such a user is logged in (Flask-Login) are dropped under the
reason ``"staff"``. Flask-Login is imported when the hook is made, so it stays optional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app

from .core.hooks import Enricher
from .errors import DropEvent


def exclude_users(predicate: Callable[[Any], bool], *, reason: str = "staff") -> Enricher:
    """An enrich hook dropping the events of requests whose Flask-Login ``current_user``
    is authenticated and passes ``predicate(user)``.

    Anonymous visitors and events tracked outside a request are kept. ``reason`` names the
    drop in the collect answer's ``dropped`` and in ``signals.event_dropped``.
    """
    try:
        import flask_login
    except ImportError as exc:
        raise ImportError(
            "exclude_users needs Flask-Login (pip install flask-login); with another login "
            "library, raise flask_analytics.DropEvent from an enrich hook of your own."
        ) from exc
    DropEvent(reason)  # a bad reason fails here, at registration, not on every event

    def exclude(event: dict[str, Any], request: Any) -> None:
        if request is None:
            return  # no request, nobody logged in (imports, jobs)
        if getattr(current_app, "login_manager", None) is None:
            raise RuntimeError(
                "exclude_users needs Flask-Login's LoginManager on the app "
                "(login_manager.init_app(app))."
            )
        user = flask_login.current_user
        if user.is_authenticated and predicate(user):
            raise DropEvent(reason)

    return exclude
