"""Placeholder until the tracker lands: serves nothing yet."""

from __future__ import annotations

from typing import Any

from flask import Response
from markupsafe import Markup


def script_view() -> Response:
    return Response("", mimetype="text/javascript")


def analytics_script(**options: Any) -> Markup:
    return Markup("")
