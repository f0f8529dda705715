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


def _import(kind: str, path: str, workspace: str, as_json: bool, max_rejected: int) -> None:
    """Import a file; exit with status 1 when more rows were rejected than `max_rejected` allows
    (the accepted rows stay written: an import is idempotent, so the fixed file can simply be
    imported again)."""
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
        click.echo(json.dumps({**report.as_dict(), "max_rejected": max_rejected}))
    else:
        click.echo(f"read {report.read}, written {report.written}, rejected {report.rejected}")
    if report.errors:
        shown = len(report.errors)
        click.echo(f"first {shown} rejected rows:" if report.rejected > shown else "rejected rows:", err=True)
        for error in report.errors:
            click.echo(f"  line {error['line']}: {json.dumps(error['errors'])}", err=True)
    if report.rejected > max_rejected:
        click.echo(f"error: {report.rejected} rows were rejected (allowed: {max_rejected}; raise it with "
                   "--max-rejected)", err=True)
        sys.exit(1)


max_rejected_option = click.option(
    "--max-rejected", type=click.IntRange(min=0), default=0, show_default=True,
    help="How many rejected rows are tolerated before the import exits with status 1.")


@import_group.command("events")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--format", "fmt", default="likely", show_default=True,
              type=click.Choice(["likely", "braze-currents", "clevertap", "segment"]),
              help="likely: our CSV / JSON Lines; or a host's own files (Braze Currents Avro, "
                   "CleverTap or Segment JSON).")
@click.option("--event", "event_name", default=None,
              help="CleverTap Get Events exports: the event the export was made for.")
@max_rejected_option
def import_events(paths: tuple[str, ...], workspace: str, as_json: bool, fmt: str,
                  event_name: str | None, max_rejected: int) -> None:
    """Import events: user_id,event,timestamp[,event_id][,properties | extra columns], or a host's files.

    Rows without event_id are identified by their content; identical rows within one file
    are all kept (see docs/importing.md)."""
    if fmt != "likely":
        _import_host(fmt, paths, workspace, as_json, event_name, max_rejected)
        return
    for path in paths:
        _import("events", path, workspace, as_json, max_rejected)


def _import_host(fmt: str, paths: tuple[str, ...], workspace: str, as_json: bool,
                 event_name: str | None, max_rejected: int) -> None:
    from plugin import workspaces
    from plugin.ingest.host_files import import_host_files
    app = load_app()
    engine = app_engine(app)
    try:
        with engine.connect() as conn:
            ws = workspaces.get(conn, workspace)
        report = import_host_files(engine, ws.id, [Path(p) for p in paths], fmt, event_name)
    except LikelyError as error:
        raise click.ClickException(error.message) from None
    except (ValueError, OSError, EOFError) as error:  # an unreadable file (fastavro says ValueError)
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(f"read {report.read}, written {report.written}, rejected {report.rejected}")
        for error in report.errors:
            click.echo(f"  {error['file']} record {error['line']}: {json.dumps(error['errors'])}", err=True)
    if report.rejected > max_rejected:
        sys.exit(1)  # rejected records beyond the budget: say so in the exit status


@import_group.command("users")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@max_rejected_option
def import_users(path: str, workspace: str, as_json: bool, max_rejected: int) -> None:
    """Import user attributes: user_id plus one column per attribute."""
    _import("users", path, workspace, as_json, max_rejected)
