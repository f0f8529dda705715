"""The `likely` command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask

from plugin.errors import LikelyError, SettingsError


def _app() -> Flask:
    from plugin import create_app
    try:
        return create_app()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def _engine(app: Flask):
    return app.extensions["likely_engine"]


@click.group()
def cli() -> None:
    """likely: event-likelihood predictions for your messaging platform."""


@cli.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's schema to the latest version."""
    from plugin.store.migrate import upgrade
    app = _app()
    upgrade(app.config["LIKELY"]["database_url"])
    click.echo("store is up to date")


@cli.group("import")
def import_group() -> None:
    """Bulk import CSV or JSON Lines files."""


def _import(kind: str, path: str, workspace: str, as_json: bool, max_rejected: int) -> None:
    """Import a file; exit with status 1 when more rows were rejected than `max_rejected` allows
    (the accepted rows stay written: an import is idempotent, so the fixed file can simply be
    imported again)."""
    from tqdm import tqdm

    from plugin import workspaces
    from plugin.ingest.files import import_file
    app = _app()
    engine = _engine(app)
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
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@max_rejected_option
def import_events(path: str, workspace: str, as_json: bool, max_rejected: int) -> None:
    """Import events: user_id,event,timestamp[,event_id][,properties | extra columns].

    Rows without event_id are identified by their content; identical rows within one file
    are all kept (see docs/importing.md)."""
    _import("events", path, workspace, as_json, max_rejected)


@import_group.command("users")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@max_rejected_option
def import_users(path: str, workspace: str, as_json: bool, max_rejected: int) -> None:
    """Import user attributes: user_id plus one column per attribute."""
    _import("users", path, workspace, as_json, max_rejected)


@cli.group("workspaces")
def workspaces_group() -> None:
    """Workspaces (one per host account)."""


@workspaces_group.command("create")
@click.argument("slug")
@click.option("--name", default=None)
@click.option("--api-key", "api_keys", multiple=True, help="An API key for this workspace (stored hashed).")
@click.option("--webhook-secret", "secrets", multiple=True, help="A whsec_ signing secret.")
def workspaces_create(slug: str, name: str | None, api_keys: tuple[str, ...], secrets: tuple[str, ...]) -> None:
    """Create a workspace (or add credentials to an existing one)."""
    from plugin import workspaces
    if not workspaces.SLUG.match(slug):
        raise click.ClickException("a workspace slug is lowercase letters, digits, _ and -")
    app = _app()
    engine = _engine(app)
    ws = workspaces.ensure(engine, slug, name)
    for key in api_keys:
        workspaces.add_api_key(engine, ws, key)
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise click.ClickException("webhook secrets start with whsec_")
        workspaces.add_webhook_secret(engine, ws, secret, app.extensions["likely_keyring"])
    click.echo(f"workspace {ws.slug} ready")


@workspaces_group.command("purge")
def workspaces_purge() -> None:
    """Delete the data of workspaces uninstalled longer than LIKELY_UNINSTALL_GRACE_DAYS."""
    from plugin.installs import purge_uninstalled
    app = _app()
    purged = purge_uninstalled(_engine(app), grace_days=app.config["LIKELY"]["uninstall_grace_days"])
    click.echo(f"purged {len(purged)} workspace(s)" + (": " + ", ".join(purged) if purged else ""))


@cli.group("secrets")
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
    app = _app()
    try:
        counts = rotate_stored(_engine(app), app.extensions["likely_keyring"])
    except UndecryptableSecret as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"re-encrypted {counts['webhook_secrets']} webhook secret(s) and "
               f"{counts['workspace_settings']} workspace settings with the first key")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="gunicorn worker processes [default: LIKELY_WEB_WORKERS, else 2].")
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the app with gunicorn (N sync workers, JSON logs, /metrics across workers)."""
    from plugin.serving import prepare_multiprocess_metrics, run_gunicorn
    # Before anything imports prometheus_client: the workers then count into shared files.
    prepare_multiprocess_metrics()
    settings = _app().config["LIKELY"]  # fail early, with a clear message, on bad settings
    run_gunicorn(host, port, workers or settings["web_workers"], settings["log_level"])


def _process(app: Flask):
    """Set up a long-running process: JSON logs, and every module that registers job kinds."""
    from plugin.jobs import load_job_modules
    from plugin.observability import logs
    settings = app.config["LIKELY"]
    logs.configure_from_settings(settings)
    try:
        load_job_modules(settings["job_modules"])
    except ImportError as error:
        raise click.ClickException(f"LIKELY_JOB_MODULES: {error}") from None
    return settings


@cli.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler (one or two per deployment; never inside the web workers)."""
    from plugin.jobs import scheduler
    app = _app()
    settings = _process(app)
    scheduler.run(_engine(app), settings)


@cli.command("worker")
@click.option("--poll-seconds", type=click.FloatRange(min=0.01), default=None,
              help="Wait when the outbox has nothing due [default: LIKELY_WORKER_POLL_SECONDS, else 2].")
def worker_command(poll_seconds: float | None) -> None:
    """Run a delivery worker: sends outbox messages until SIGTERM (any number, any machine)."""
    from plugin.jobs import registry, worker
    app = _app()
    settings = _process(app)
    if not registry.is_registered(worker.KIND):
        raise click.ClickException(f"no {worker.KIND!r} job kind is registered: this build has no campaigns "
                                   "outbox yet (plugin/campaigns registers it)")
    worker.run_until_signalled(_engine(app), settings, poll_seconds)


@cli.group("jobs", invoke_without_command=True)
@click.option("--workspace", default=None, help="Only this workspace's runs (default: all, system jobs too).")
@click.option("--kind", default=None)
@click.option("--outcome", type=click.Choice(["running", "ok", "failed", "skipped"]), default=None)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_context
def jobs_group(ctx: click.Context, workspace: str | None, kind: str | None, outcome: str | None, limit: int,
               as_json: bool) -> None:
    """The job run log, newest first (subcommands: scheduled, run, reconcile)."""
    if ctx.invoked_subcommand is not None:
        return
    from plugin import workspaces
    from plugin.jobs import runlog
    engine = _engine(_app())
    with engine.connect() as conn:
        scope = runlog.ALL
        if workspace:
            try:
                scope = workspaces.get(conn, workspace).id
            except LikelyError as error:
                raise click.ClickException(error.message) from None
        page = runlog.list_runs(conn, scope, limit=limit, kind=kind, outcome=outcome)
    for run in page.runs:
        if as_json:
            click.echo(json.dumps({**run, "duration_seconds": runlog.duration_seconds(run)}, default=str))
        else:
            took = runlog.duration_seconds(run)
            click.echo(f"{run['id']:>7}  {run['started_at']:%Y-%m-%d %H:%M:%S}  {run['outcome']:<8} "
                       f"{'' if took is None else f'{took:.1f}s':>8}  {run['job_id']}  "
                       f"{json.dumps(run['counts']) if run['counts'] else ''}{'  ' + run['error'] if run['error'] else ''}")


@jobs_group.command("scheduled")
@click.option("--json", "as_json", is_flag=True)
def jobs_scheduled(as_json: bool) -> None:
    """The jobs in the persistent job store and their next run time."""
    from plugin.jobs.jobstore import scheduled_jobs
    for job in scheduled_jobs(_engine(_app())):
        when = job.next_run_time.isoformat() if job.next_run_time else None
        if as_json:
            click.echo(json.dumps({"id": job.id, "kind": job.kwargs.get("kind"), "next_run_time": when,
                                   "trigger": str(job.trigger)}))
        else:
            click.echo(f"{when or 'paused':<27} {job.id}  {job.trigger}")


@jobs_group.command("run")
@click.argument("job_id")
def jobs_run(job_id: str) -> None:
    """Run a scheduled job now (through its lease, recorded in the run log)."""
    from plugin.jobs import runner
    from plugin.jobs.jobstore import open_store
    app = _app()
    settings = _process(app)
    job = open_store(_engine(app)).lookup_job(job_id)
    if job is None:
        raise click.ClickException(f"no scheduled job {job_id!r} (see `likely jobs scheduled`)")
    result = runner.execute(_engine(app), job.id, None, lease_seconds=settings["job_lease_seconds"], **job.kwargs)
    click.echo(json.dumps({"outcome": result.outcome, "run_id": result.run_id, "counts": result.counts,
                           "error": result.error}))
    if result.outcome not in ("ok",):
        sys.exit(1)


@jobs_group.command("reconcile")
def jobs_reconcile() -> None:
    """Align the job store with the store's predictions and workspaces now."""
    from plugin.jobs import runner
    from plugin.jobs.scheduler import reconcile_now
    app = _app()
    settings = _process(app)
    result = reconcile_now(_engine(app), settings, runner.holder_name())
    click.echo(json.dumps({"outcome": result.outcome, "counts": result.counts, "error": result.error}))
    if result.outcome != "ok":
        sys.exit(1)


from plugin.predictions.cli import register as register_predictions  # noqa: E402
register_predictions(cli)


def main() -> None:
    cli(prog_name="likely")


from plugin.campaigns.cli import register as register_campaigns  # noqa: E402
register_campaigns(cli)
