"""Share links and API tokens (both databases): made with the CLI, shown once and stored
as a SHA-256, listed, revoked; a share link serves the dashboard read-only without the
access callback and expires; a bearer token opens the API only, records its last use,
is rate-limited and answers CORS for the configured origins; both honour their scope."""

from __future__ import annotations

import datetime as dt
import hashlib
import html as html_lib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.web.dashboard import CONTENT_SECURITY_POLICY

from ..conftest import build_app, release_app
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import insert, make_row

NOW = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.timezone.utc)
ORIGIN = "https://status.example"
#: Pageviews per hostname today, by different visitors.
VIEWS = {"a.example": 3, "b.example": 5}


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[Flask]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(
            module_database_url,
            schemas,
            "share_links",
            ANALYTICS_API_RATE_LIMIT="4/minute",
            ANALYTICS_API_CORS_ORIGINS=[ORIGIN],
        )
        analytics: Analytics = app.extensions["analytics_test"]
        analytics.dashboard_access(lambda: False)  # nobody logs in
        now = NOW.replace(tzinfo=None)
        rows = [
            make_row(now - dt.timedelta(hours=2, minutes=i), 100 * n + i, hostname=host)
            for n, (host, count) in enumerate(VIEWS.items())
            for i in range(count)
        ]
        with app.app_context():
            insert(analytics, rows)
        yield app
        release_app(app, db, schemas)


def cli(app: Flask, *args: str, at: dt.datetime = NOW) -> str:
    with time_machine.travel(at, tick=False):
        result = app.test_cli_runner().invoke(args=["analytics", *args])
    assert result.exit_code == 0, result.output
    return result.output


def get(app: Flask, url: str, at: dt.datetime = NOW, **kwargs: Any) -> Any:
    with time_machine.travel(at, tick=False):
        response = app.test_client().open(url, **kwargs)
    response.get_data()  # read, so a file it streams is closed
    response.close()
    return response


def stored(app: Flask, table: str) -> list[dict[str, Any]]:
    analytics: Analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.connect() as conn:
        rows = conn.execute(sa.select(analytics.db.metadata.tables[table])).mappings()
        return [dict(r) for r in rows]


def created(app: Flask, kind: str, printed: str, *options: str) -> tuple[str, int]:
    """(what ``flask analytics KIND create`` printed on its second line, the grant's id)."""
    output = cli(app, kind, "create", *options)
    match = re.search(rf"^(?:Share link|API token) (\d+) .*\n({printed})\n", output)
    assert match, output
    return match.group(2), int(match.group(1))


def share(app: Flask, *options: str) -> tuple[str, int]:
    return created(app, "share", "/analytics/shared/[A-Za-z0-9_-]{43}/", *options)


def test_a_share_link_serves_the_dashboard_read_only_without_login(site: Flask) -> None:
    url, ident = share(site, "--name", "Investors")
    token = url.split("/")[3]
    # Stored as its hash only.
    row = next(r for r in stored(site, "analytics_share_link") if r["id"] == ident)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored(site, "analytics_share_link"))
    assert get(site, "/analytics/").status_code == 403  # the dashboard itself stays closed
    page = get(site, url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # Links, stylesheet and script stay under the link, and they work.
    links = {html_lib.unescape(u) for u in re.findall(r'(?:href|src)="(/analytics/[^"]*)', html)}
    assert links
    assert all(link.startswith(url) for link in links), links
    for link in sorted(links):
        assert get(site, link).status_code == 200, link
    api = get(site, f"{url}api/stats?period=today").get_json()
    assert api["totals"]["pageviews"] == sum(VIEWS.values())
    # Read-only: nothing but GET.
    for method in ("POST", "PUT", "DELETE"):
        assert get(site, url, method=method).status_code in (404, 405)
    listed = cli(site, "share", "list")
    assert "Investors" in listed
    assert "[live]" in listed
    assert token not in listed


def test_a_share_link_expires_and_revoked_ones_stop(site: Flask) -> None:
    url, _ident = share(site, "--expires-days", "2")
    expiry = NOW + dt.timedelta(days=2)
    assert get(site, url, at=expiry - dt.timedelta(seconds=1)).status_code == 200
    assert get(site, url, at=expiry).status_code == 404
    assert get(site, f"{url}api/stats", at=expiry).status_code == 404
    assert "[expired" in cli(site, "share", "list", at=expiry)
    url, ident = share(site)
    assert get(site, url).status_code == 200
    assert f"Revoked share link {ident}" in cli(site, "share", "revoke", str(ident))
    assert get(site, url).status_code == 404
    assert get(site, f"{url}static/dashboard.css").status_code == 404
    # Revoking twice, or an unknown id, says so.
    result = site.test_cli_runner().invoke(args=["analytics", "share", "revoke", str(ident)])
    assert result.exit_code == 1
    assert "No live share link" in result.output


def test_a_scoped_share_link_sees_its_hostname_only(site: Flask) -> None:
    url, _ident = share(site, "--hostname", "b.example")
    body = get(site, f"{url}api/stats?period=today").get_json()
    assert body["totals"]["pageviews"] == VIEWS["b.example"]
    assert body["totals"]["visitors"] == VIEWS["b.example"]
    bad = site.test_cli_runner().invoke(args=["analytics", "share", "create", "--scope", "x:is:y"])
    assert bad.exit_code == 2
    assert "Unknown filter dimension" in bad.output


def token(app: Flask, *options: str) -> tuple[str, int]:
    return created(app, "token", "[A-Za-z0-9_-]{43}", *options)


def test_an_api_token_opens_the_api_only_and_is_revocable(site: Flask) -> None:
    secret, ident = token(site, "--name", "Status board")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert get(site, "/analytics/api/stats?period=today").status_code == 403
    answer = get(site, "/analytics/api/stats?period=today", headers=bearer)
    assert answer.status_code == 200
    assert answer.get_json()["totals"]["pageviews"] == sum(VIEWS.values())
    assert get(site, "/analytics/api/breakdown/page?format=csv", headers=bearer).status_code == 200
    assert get(site, "/analytics/", headers=bearer).status_code == 403  # pages: no
    row = next(r for r in stored(site, "analytics_api_token") if r["id"] == ident)
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["last_used_at"] == NOW.replace(tzinfo=None)
    assert "Status board" in cli(site, "token", "list")
    cli(site, "token", "revoke", str(ident))
    refused = get(site, "/analytics/api/stats", headers=bearer)
    assert refused.status_code == 401
    assert refused.get_json()["error"]
    wrong = get(site, "/analytics/api/stats", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_a_scoped_token_is_limited_to_its_scope(site: Flask) -> None:
    secret, _ident = token(site, "--name", "A", "--scope", "hostname:is:a.example")
    bearer = {"Authorization": f"Bearer {secret}"}
    body = get(site, "/analytics/api/stats?period=today", headers=bearer).get_json()
    assert body["totals"]["pageviews"] == VIEWS["a.example"]
    rows = get(site, "/analytics/api/realtime", headers=bearer).get_json()
    assert rows["visitors"] == 0  # its events are two hours old
    suggest = get(site, "/analytics/api/suggest/page?period=today", headers=bearer).get_json()
    assert suggest["values"] == [{"value": "/", "visitors": VIEWS["a.example"]}]


def test_tokens_are_rate_limited_each_on_its_own(site: Flask) -> None:
    first, _ = token(site, "--name", "Busy")
    second, _ = token(site, "--name", "Calm")
    url = "/analytics/api/stats?period=today"
    codes = [
        get(site, url, headers={"Authorization": f"Bearer {first}"}).status_code for _ in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]
    refused = get(site, url, headers={"Authorization": f"Bearer {first}"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert get(site, url, headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_cors_for_the_configured_origins(site: Flask) -> None:
    secret, _ = token(site, "--name", "Browser")
    url = "/analytics/api/stats?period=today"
    preflight = get(
        site,
        url,
        method="OPTIONS",
        headers={"Origin": ORIGIN, "Access-Control-Request-Headers": "authorization"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    bearer = {"Authorization": f"Bearer {secret}", "Origin": ORIGIN}
    answer = get(site, url, headers=bearer)
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = get(site, url, headers={**bearer, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    closed = get(site, url, method="OPTIONS", headers={"Origin": "https://evil.example"})
    assert closed.status_code == 403
