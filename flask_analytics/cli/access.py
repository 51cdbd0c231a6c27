"""``share`` and ``token``: read-only share links of the dashboard and API tokens, each
shown once, stored as a hash, listed and revoked; both may carry a scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click
from flask.cli import AppGroup

from ..access import SHARE, TOKEN, Grant, GrantKind, create_grant, list_grants, revoke_grant
from ..reports import BadFilter
from ..reports.scope import Scope
from ..web.dashboard.current import current_goals, custom_columns
from .common import app_state, click_errors

share_cli = AppGroup("share", help="Read-only links to the dashboard, no login needed.")
token_cli = AppGroup("token", help="Bearer tokens for the JSON/CSV API (/analytics/api/*).")


def scope_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--hostname``, ``--path-prefix`` and ``--scope FILTER``, each repeatable."""
    for option in (
        click.option(
            "--scope",
            "filters",
            multiple=True,
            metavar="FILTER",
            help="Limit to a filter, e.g. source:is:Google (repeatable, ANDed).",
        ),
        click.option(
            "--path-prefix", multiple=True, help="Limit to pages under a path (repeatable)."
        ),
        click.option("--hostname", multiple=True, help="Limit to a hostname (repeatable)."),
    ):
        func = option(func)
    return func


def build_scope(
    hostnames: tuple[str, ...], prefixes: tuple[str, ...], filters: tuple[str, ...]
) -> str | None:
    """The options as a scope's JSON (None: no scope), checked against the app."""
    if not (hostnames or prefixes or filters):
        return None
    try:
        scope = Scope(hostnames=hostnames or None, path_prefixes=prefixes or None, filters=filters)
        scope.as_filters(custom_columns(), current_goals())
    except (BadFilter, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--scope") from None
    return scope.to_json()


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _list(kind: GrantKind) -> None:
    grants = list_grants(app_state(), kind)
    if not grants:
        click.echo("None.")
        return
    now = app_state().clock.utcnow()
    for grant in grants:
        click.echo(_line(grant, now))


def _line(grant: Grant, now: dt.datetime) -> str:
    if grant.revoked_at is not None:
        status = f"revoked {_when(grant.revoked_at)}"
    elif not grant.live(now):
        status = f"expired {_when(grant.expires_at)}"
    else:
        status = "live"
    scope = Scope.from_json(grant.scope).describe() if grant.scope else "everything"
    extra = (
        f"  expires {_when(grant.expires_at)}"
        if grant.kind == SHARE
        else f"  last used {_when(grant.last_used_at)}"
    )
    return (
        f"{grant.id:>4}  {grant.name}  [{status}]  scope: {scope}  "
        f"created {_when(grant.created_at)}{extra}"
    )


@share_cli.command("create")
@click.option("--name", default="Shared dashboard", show_default=True, help="What it is for.")
@click.option("--expires-days", type=click.IntRange(min=1), help="Stop working after N days.")
@click.option("--base-url", default="", help="Site URL to print before the link's path.")
@scope_options
def share_create(
    name: str,
    expires_days: int | None,
    base_url: str,
    hostname: tuple[str, ...],
    path_prefix: tuple[str, ...],
    filters: tuple[str, ...],
) -> None:
    """Make a read-only share link and print its URL (shown once)."""
    state = app_state()
    scope = build_scope(hostname, path_prefix, filters)
    expires = None
    if expires_days is not None:
        expires = state.clock.utcnow().replace(microsecond=0) + dt.timedelta(days=expires_days)
    with click_errors():
        token, grant = create_grant(state, SHARE, name, scope=scope, expires_at=expires)
    url = f"{base_url.rstrip('/')}{state.settings.dashboard_url}/shared/{token}/"
    click.echo(f"Share link {grant.id} ({name}), expires {_when(expires)}:")
    click.echo(url)
    click.echo("It is shown once: only its hash is stored.")


def _revoke(kind: GrantKind, ident: int) -> None:
    label = "share link" if kind == SHARE else "API token"
    if not revoke_grant(app_state(), kind, ident):
        raise click.ClickException(f"No live {label} {ident}.")
    click.echo(f"Revoked {label} {ident}.")


@share_cli.command("list")
def share_list() -> None:
    """List share links (never their tokens)."""
    _list(SHARE)


@share_cli.command("revoke")
@click.argument("ident", type=int, metavar="ID")
def share_revoke(ident: int) -> None:
    """Revoke share link ID: its URL stops working at once."""
    _revoke(SHARE, ident)


@token_cli.command("create")
@click.option("--name", required=True, help="Who or what uses it.")
@scope_options
def token_create(
    name: str, hostname: tuple[str, ...], path_prefix: tuple[str, ...], filters: tuple[str, ...]
) -> None:
    """Make an API token and print it (shown once)."""
    state = app_state()
    scope = build_scope(hostname, path_prefix, filters)
    with click_errors():
        token, grant = create_grant(state, TOKEN, name, scope=scope)
    click.echo(f"API token {grant.id} ({name}); send it as 'Authorization: Bearer <token>':")
    click.echo(token)
    click.echo("It is shown once: only its hash is stored.")


@token_cli.command("list")
def token_list() -> None:
    """List API tokens (never the tokens themselves) and when each was last used."""
    _list(TOKEN)


@token_cli.command("revoke")
@click.argument("ident", type=int, metavar="ID")
def token_revoke(ident: int) -> None:
    """Revoke API token ID: requests with it answer 401 at once."""
    _revoke(TOKEN, ident)
