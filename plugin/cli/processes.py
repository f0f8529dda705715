"""`likely serve|scheduler|worker`: the long-running processes."""
from __future__ import annotations

import click

from plugin.cli.common import app_engine, load_app, start_process


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="gunicorn worker processes [default: LIKELY_WEB_WORKERS, else 2].")
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the app with gunicorn (N sync workers, JSON logs, /metrics across workers)."""
    from plugin.serving import prepare_multiprocess_metrics, run_gunicorn
    # Before anything imports prometheus_client: the workers then count into shared files.
    prepare_multiprocess_metrics()
    settings = load_app().config["LIKELY"]  # fail early, with a clear message, on bad settings
    run_gunicorn(host, port, workers or settings["web_workers"], settings["log_level"])


@click.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler (one or two per deployment; never inside the web workers)."""
    from plugin.jobs import scheduler
    app = load_app()
    settings = start_process(app)
    scheduler.run(app_engine(app), settings)


@click.command("worker")
@click.option("--poll-seconds", type=click.FloatRange(min=0.01), default=None,
              help="Wait when the outbox has nothing due [default: LIKELY_WORKER_POLL_SECONDS, else 2].")
def worker_command(poll_seconds: float | None) -> None:
    """Run a delivery worker: sends outbox messages until SIGTERM (any number, any machine)."""
    from plugin.jobs import registry, worker
    app = load_app()
    settings = start_process(app)
    if not registry.is_registered(worker.KIND):
        raise click.ClickException(f"no {worker.KIND!r} job kind is registered: this build has no campaigns "
                                   "outbox yet (plugin/campaigns registers it)")
    worker.run_until_signalled(app_engine(app), settings, poll_seconds)
