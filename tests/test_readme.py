"""The README's Quickstart, run as written: its app module and its shell commands."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")


def _block(marker: str, language: str) -> str:
    """The fenced ``language`` block right after ``<!-- quickstart:marker -->``."""
    match = re.search(
        rf"<!-- quickstart:{marker} -->\n```{language}\n(.*?)```", README, flags=re.DOTALL
    )
    assert match, f"README.md has no {language} block after <!-- quickstart:{marker} -->"
    return match.group(1)


@pytest.mark.real_clock("the Quickstart's flask commands run in other processes, on the real clock")
def test_the_quickstart_runs_as_written(tmp_path, monkeypatch):
    (tmp_path / "mysite.py").write_text(_block("app", "python"), "utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ran = []
    for line in _block("commands", "sh").splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            env[name] = value
            continue
        assert words[0] == "flask", line
        if words[1] == "run":
            continue  # the server: the app is exercised below with its test client
        # `python -m flask` is the `flask` script of this interpreter's environment.
        done = subprocess.run(
            [sys.executable, "-m", *words], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        ran.append(words[1:3])
    assert ["db", "upgrade"] in ran
    assert ["analytics", "aggregate"] in ran

    # The migration created the analytics tables in the database the snippet names.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'instance' / 'mysite.db'}")
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"analytics_event", "analytics_daily_summary", "alembic_version"} <= tables

    # The app itself: the dashboard is closed until the access rule allows the request.
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import mysite  # the README's module, just written

    try:
        app = mysite.create_app()
        client = app.test_client()
        assert client.get("/analytics/").status_code == 403
        with client.session_transaction() as session:
            session["is_admin"] = True
        assert client.get("/analytics/").status_code == 200
        pageview = {"url": "http://localhost/pricing", "name": "pageview"}
        answer = client.post(
            "/_analytics/collect",
            json=pageview,
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"},
        )
        assert answer.status_code == 202, answer.get_data(as_text=True)
        with app.app_context():
            stored = mysite.db.session.scalars(sa.select(mysite.analytics.Event.path)).all()
        assert stored == ["/pricing"]
    finally:
        sys.modules.pop("mysite", None)


def test_the_quickstart_module_is_not_named_like_a_standard_library_module():
    module = re.search(r"FLASK_APP=(\w+):", _block("commands", "sh"))
    assert module, "the Quickstart commands name no app module"
    assert module.group(1) not in sys.stdlib_module_names
