"""A small host site for the tracker's browser tests: real pages that include the tracker.

``TRACKER_OPTIONS`` (app config) are the ``analytics_script()`` options of every page, so
a test changes them between page loads.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, render_template, request
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics


def create_app(database_uri: str, **config: Any) -> Flask:
    app = Flask(__name__, template_folder="templates")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_uri,
        SECRET_KEY="test",
        TRACKER_OPTIONS={"allow_automation": True},
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    analytics = Analytics(app, db=db)
    app.extensions["analytics_test"] = analytics
    with app.app_context():
        db.create_all()

    @app.route("/")
    @app.route("/page/<path:name>")
    def page(name: str = "home") -> str:
        return render_template(
            "tracker/page.html", name=name, options=app.config["TRACKER_OPTIONS"]
        )

    @app.route("/tall")
    def tall() -> str:
        return render_template("tracker/tall.html", options=app.config["TRACKER_OPTIONS"])

    @app.route("/thanks", methods=["GET", "POST"])
    def thanks() -> str:
        return render_template(
            "tracker/page.html", name="thanks", options=app.config["TRACKER_OPTIONS"]
        )

    @app.route("/blank")
    def blank() -> str:
        return "<!doctype html><title>No tracker here</title>"

    @app.route("/files/<path:name>")
    def download(name: str) -> Response:
        # 204: the browser stays on the page, as it does for a file download.
        return Response(status=204)

    @app.route("/echo", methods=["POST"])
    def echo() -> Response:
        return Response(request.get_data(), mimetype="text/plain")

    app.wsgi_app = CollectRecorder(app.wsgi_app)  # type: ignore[method-assign]
    return app


class CollectRecorder:
    """WSGI middleware keeping every collect request body the server received.

    ``bodies`` holds ``(monotonic time, parsed JSON)`` pairs: what reached the server,
    beacons sent while a page unloads included (which a page's request events may miss).
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        self.bodies: list[tuple[float, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") == "/_analytics/collect"
            and environ["REQUEST_METHOD"] == "POST"
        ):
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                self.bodies.append((time.monotonic(), json.loads(raw)))
            except ValueError:
                self.bodies.append((time.monotonic(), raw))
        return self.wsgi_app(environ, start_response)
