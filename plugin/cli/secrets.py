"""`likely secrets …`: encryption of secrets at rest."""
from __future__ import annotations

import click

from plugin.cli.common import app_engine, load_app


@click.group("secrets")
def secrets_group() -> None:
    """Encryption of secrets at rest (LIKELY_SECRET_KEY)."""


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for LIKELY_SECRET_KEY."""
    from plugin.crypto import generate_key
    click.echo(generate_key())


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the first key of LIKELY_SECRET_KEY."""
    from plugin.crypto import UndecryptableSecret, rotate_stored
    app = load_app()
    try:
        counts = rotate_stored(app_engine(app), app.extensions["likely_keyring"])
    except UndecryptableSecret as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"re-encrypted {counts['webhook_secrets']} webhook secret(s) and "
               f"{counts['workspace_settings']} workspace settings with the first key")
