"""`likely workspaces …`: workspaces (one per host account)."""
from __future__ import annotations

import click

from plugin.cli.common import app_engine, load_app
from plugin.errors import LikelyError


@click.group("workspaces")
def workspaces_group() -> None:
    """Workspaces (one per host account)."""


@workspaces_group.command("create")
@click.argument("slug")
@click.option("--name", default=None)
@click.option("--api-key", "api_keys", multiple=True, help="An API key for this workspace (stored hashed).")
@click.option("--webhook-secret", "secrets", multiple=True, help="A whsec_ signing secret.")
def workspaces_create(slug: str, name: str | None, api_keys: tuple[str, ...], secrets: tuple[str, ...]) -> None:
    """Create a workspace (or add credentials to an existing one)."""
    from plugin import store, workspaces
    try:
        workspaces.check_new_credentials(slug, api_keys, secrets)
    except LikelyError as error:
        problems = "; ".join(f"{field}: {' '.join(reasons)}" for field, reasons in error.details.items())
        raise click.ClickException(f"{error.message}: {problems}") from None
    app = load_app()
    keyring = app.extensions["likely_keyring"]
    # One transaction: the workspace and every credential, or nothing.
    with store.transaction(app_engine(app)) as conn:
        ws = workspaces.ensure_in(conn, slug, name)
        for key in api_keys:
            workspaces.add_api_key_in(conn, ws, key)
        for secret in secrets:
            workspaces.add_webhook_secret_in(conn, ws, secret, keyring)
    click.echo(f"workspace {ws.slug} ready")


@workspaces_group.command("purge")
def workspaces_purge() -> None:
    """Delete the data of workspaces uninstalled longer than LIKELY_UNINSTALL_GRACE_DAYS."""
    from plugin.installs import purge_uninstalled
    app = load_app()
    purged = purge_uninstalled(app_engine(app), grace_days=app.config["LIKELY"]["uninstall_grace_days"])
    click.echo(f"purged {len(purged)} workspace(s)" + (": " + ", ".join(purged) if purged else ""))
