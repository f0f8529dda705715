"""`likely import events|users`: bulk import of CSV or JSON Lines files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from plugin.cli.common import app_engine, load_app
from plugin.errors import LikelyError


@click.group("import")
def import_group() -> None:
    """Bulk import CSV or JSON Lines files."""


def _import(kind: str, path: str, workspace: str, as_json: bool) -> None:
    from tqdm import tqdm

    from plugin import workspaces
    from plugin.ingest.files import import_file
    app = load_app()
    engine = app_engine(app)
    try:
        with engine.connect() as conn:
            ws = workspaces.get(conn, workspace)
    except LikelyError as error:
        raise click.ClickException(error.message) from None
    with tqdm(unit=" rows", unit_scale=True, desc=f"importing {kind}", file=sys.stderr,
              disable=as_json or None) as bar:
        try:
            report = import_file(engine, ws.id, Path(path), kind, progress=bar.update)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(f"read {report.read}, written {report.written}, rejected {report.rejected}")
        for error in report.errors:
            click.echo(f"  line {error['line']}: {json.dumps(error['errors'])}", err=True)
    if report.rejected and not report.written and report.read:
        sys.exit(1)


@import_group.command("events")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_events(path: str, workspace: str, as_json: bool) -> None:
    """Import events: user_id,event,timestamp[,properties | extra columns]."""
    _import("events", path, workspace, as_json)


@import_group.command("users")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_users(path: str, workspace: str, as_json: bool) -> None:
    """Import user attributes: user_id plus one column per attribute."""
    _import("users", path, workspace, as_json)
