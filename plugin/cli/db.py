"""`likely db …`: the store's schema."""
from __future__ import annotations

import click

from plugin.cli.common import load_app


@click.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's schema to the latest version."""
    from plugin.store.migrate import upgrade
    app = load_app()
    upgrade(app.config["LIKELY"]["database_url"])
    click.echo("store is up to date")
