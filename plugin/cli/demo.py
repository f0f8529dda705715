"""`likely demo`: load the bundled demo data, train and score the demo prediction, serve."""
from __future__ import annotations

import click

from plugin.cli.common import app_engine, cli_errors, load_app


@click.command()
@click.option("--users", type=int, default=20_000, show_default=True, help="Synthetic users to generate.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--no-serve", is_flag=True, help="Load, train and score, then stop.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
def demo(users, seed, no_serve, port, workers) -> None:
    """Load the demo data into `default`, train and score "purchase within 14 days", then serve."""
    from plugin.demo.run import run_demo
    from plugin.serving import port_in_use
    if not no_serve and port_in_use("127.0.0.1", port):
        # Before any work: a busy port found after training would waste the whole run.
        raise click.ClickException(f"port {port} on 127.0.0.1 is already in use; choose another with --port")
    with cli_errors():
        app = load_app()
        done = run_demo(app_engine(app), app.config["LIKELY"], users, seed, echo=click.echo)
    base = f"http://127.0.0.1:{port}"
    page = f"{base}/login?next=/predictions/{done['prediction_id']}"
    if done["api_key"]:
        click.echo(f"prediction page: {page} (sign in with the demo API key {done['api_key']}, "
                   "which also works as the /v1 bearer token)")
        if done["revoked_keys"]:
            click.echo("the demo API key printed by the previous run no longer works: each run makes a new one")
    else:
        click.echo(f"prediction page: {page} (sign in with one of LIKELY_API_KEYS)")
    if not no_serve:
        from plugin.serving import run_gunicorn
        click.echo(f"serving on {base}")
        run_gunicorn("127.0.0.1", port, workers)
