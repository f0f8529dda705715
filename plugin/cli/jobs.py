"""`likely jobs …`: the job run log, the job store, running a job now."""
from __future__ import annotations

import json
import sys

import click

from plugin.cli.common import app_engine, load_app, start_process
from plugin.errors import LikelyError


@click.group("jobs", invoke_without_command=True)
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
    engine = app_engine(load_app())
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
    for job in scheduled_jobs(app_engine(load_app())):
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
    app = load_app()
    settings = start_process(app)
    job = open_store(app_engine(app)).lookup_job(job_id)
    if job is None:
        raise click.ClickException(f"no scheduled job {job_id!r} (see `likely jobs scheduled`)")
    result = runner.execute(app_engine(app), job.id, None, lease_seconds=settings["job_lease_seconds"], **job.kwargs)
    click.echo(json.dumps({"outcome": result.outcome, "run_id": result.run_id, "counts": result.counts,
                           "error": result.error}))
    if result.outcome not in ("ok",):
        sys.exit(1)


@jobs_group.command("reconcile")
def jobs_reconcile() -> None:
    """Align the job store with the store's predictions and workspaces now."""
    from plugin.jobs import runner
    from plugin.jobs.scheduler import reconcile_now
    app = load_app()
    settings = start_process(app)
    result = reconcile_now(app_engine(app), settings, runner.holder_name())
    click.echo(json.dumps({"outcome": result.outcome, "counts": result.counts, "error": result.error}))
    if result.outcome != "ok":
        sys.exit(1)
