"""`likely predictions …`, `likely train|score|backtest`, `likely export scores`.

Every command takes a prediction by name or id and `--json` for machine-readable output;
definitions are validated by the same schemas as the API.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from plugin.cli.common import cli_errors, load_app

workspace_option = click.option("--workspace", default="default", show_default=True, help="Workspace slug.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
as_of_option = click.option("--as-of", "as_of", default=None,
                            help="A date (midnight UTC), ISO 8601 time or epoch seconds; default now.")


def _setup(workspace: str):
    from plugin import workspaces
    app = load_app()
    engine = app.extensions["likely_engine"]
    with engine.connect() as conn:
        ws = workspaces.get(conn, workspace)
    return app, engine, ws


def _prediction(engine, ws, reference: str):
    from plugin.predictions import definitions
    with engine.connect() as conn:
        return definitions.find(conn, ws.id, reference)


def _as_of(value: str | None) -> int:
    from plugin.api.requests import load
    from plugin.predictions.schemas import AsOfSchema
    return load(AsOfSchema(), {"as_of": value})["as_of"] or int(time.time())


def _json_arg(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint=option) from None


def _bar(total: int | None, desc: str, quiet: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit=" users", unit_scale=True, desc=desc, file=sys.stderr, disable=quiet or None)


def _user_count(engine, ws) -> int:
    from sqlalchemy import func, select

    from plugin.store.tables import users
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(users.c.workspace_id == ws.id)).scalar_one()


def _quality(metrics: dict) -> str:
    """Quality and AUC, or why they are missing (a test set holding only one class)."""
    if metrics.get("prediction_quality") is None:
        return "quality n/a (the test set holds one class only)"
    text = f"quality {metrics['prediction_quality']:.1f} ({metrics['quality_band']}"
    interval = metrics.get("prediction_quality_interval")
    if interval:
        text += f"; 95 % interval {interval[0]:.1f}–{interval[1]:.1f}"
    if metrics.get("quality_low_confidence"):
        text += f"; low confidence: {metrics.get('test_positives')} test converters"
    text += f"), AUC {metrics['auc']:.3f}"
    if metrics.get("mean_gap_pp") is not None:
        text += f", predicted − observed {metrics['mean_gap_pp']:+.2f} pp"
    return text


def _print_prediction(body: dict) -> None:
    from plugin.predictions.eligibility import describe_condition
    condition = body["goal_condition"]
    goal = body["goal_event"] + (f" where {describe_condition(condition)}" if condition else "")
    if body.get("goal_kind") == "churn":
        goal = f"churn (no {goal})"
    click.echo(f"#{body['id']} {body['name']} [{body['status']}]: {goal} within {body['window_days']} days")
    model = body.get("model")
    if model:
        m = model["metrics"]
        click.echo(f"  model v{model['version']} trained {model['trained_at']} (cutoff {model['cutoff']}): "
                   f"{_quality(m)}, log loss {m['log_loss']:.4f}, Brier {m['brier']:.4f}")
    run = body.get("latest_run")
    if run:
        users = ", ".join(f"{k} {v}" for k, v in run["categories"]["users"].items())
        click.echo(f"  scored {run['users_scored']} users ({users}); expected conversions "
                   f"{run['expected_conversions']:.1f}")


def register(cli: click.Group) -> None:
    """Attach the commands to the `likely` group."""
    cli.add_command(predictions)
    cli.add_command(train)
    cli.add_command(score)
    cli.add_command(backtest)
    export = cli.commands.get("export")
    if export is None:
        export = click.Group("export", help="Export data as files.")
        cli.add_command(export)
    export.add_command(export_scores)


@click.group()
def predictions() -> None:
    """Prediction definitions."""


@predictions.command("create")
@click.option("--name", required=True)
@click.option("--event", "goal_event", required=True, help="The goal event's name.")
@click.option("--churn", is_flag=True, help="Predict churn: the risk that a user who performed the event in the "
                                            "last window does NOT perform it within the next.")
@click.option("--where", "where", default=None, help='Goal condition, e.g. {"property": "value", "op": "gt", "value": 20}')
@click.option("--window-days", type=int, required=True, help="1–60 days.")
@click.option("--audience", default=None, help="Eligible audience filter tree (JSON); default: every user with any history.")
@click.option("--categories", "categories_spec", default=None,
              help="default | fixed:Low=0,Medium=50,High=75 | quantile:Low=50,Medium=30,High=20 | JSON.")
@click.option("--status", type=click.Choice(["active", "preview", "demo"]), default="active", show_default=True)
@click.option("--schedule", type=click.Choice(["daily", "weekly", "monthly"]), default="daily", show_default=True)
@click.option("--retrain-days", type=int, default=15, show_default=True)
@workspace_option
@json_option
def create(name, goal_event, churn, where, window_days, audience, categories_spec, status, schedule, retrain_days,
           workspace, as_json) -> None:
    """Define a prediction."""
    from plugin.api.predictions import view
    from plugin.api.requests import load
    from plugin.predictions import categories, coverage, datacheck
    from plugin.predictions.schemas import PredictionSchema
    from plugin.store import transaction
    payload = {"name": name, "goal_event": goal_event, "goal_kind": "churn" if churn else "event",
               "goal_condition": _json_arg(where, "--where"),
               "window_days": window_days, "audience": _json_arg(audience, "--audience"), "status": status,
               "schedule": schedule, "retrain_days": retrain_days}
    if categories_spec is not None:
        try:
            payload["categories"] = categories.parse_spec(categories_spec)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--categories") from None
    with cli_errors():
        app, engine, ws = _setup(workspace)
        data = load(PredictionSchema(), payload)
        with transaction(engine) as conn:
            prediction, checked = datacheck.create_checked(conn, ws.id, data, app.config["LIKELY"], int(time.time()))
            body = {**view(conn, prediction), "data_check": checked.as_dict(),
                    "warnings": checked.warnings + coverage.audience_warnings(conn, prediction)}
    if as_json:
        click.echo(json.dumps(body))
        return
    _print_prediction(body)
    click.echo(f"data check, last {checked.window_days} days: {checked.eligible_users} eligible users, "
               f"{checked.past_converters} past converters, {checked.non_converters} non-converters")
    for warning in body["warnings"]:
        click.echo(f"warning: {warning['code']}: {warning['message']}", err=True)


@predictions.command("list")
@click.option("--status", type=click.Choice(["demo", "preview", "active", "archived"]), default=None)
@workspace_option
@json_option
def list_command(status, workspace, as_json) -> None:
    """List the workspace's predictions."""
    from plugin.api.predictions import view
    from plugin.predictions import definitions
    with cli_errors():
        _, engine, ws = _setup(workspace)
        with engine.connect() as conn:
            bodies = [view(conn, p) for p in definitions.list_all(conn, ws.id, status)]
    if as_json:
        click.echo(json.dumps({"predictions": bodies}))
    for body in [] if as_json else bodies:
        _print_prediction(body)


@predictions.command("show")
@click.argument("prediction")
@workspace_option
@json_option
def show(prediction, workspace, as_json) -> None:
    """A prediction, its current model's quality and its latest scoring run."""
    from plugin.api.predictions import view
    with cli_errors():
        _, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        with engine.connect() as conn:
            body = view(conn, found)
    click.echo(json.dumps(body)) if as_json else _print_prediction(body)


@predictions.command("archive")
@click.argument("prediction")
@workspace_option
@json_option
def archive(prediction, workspace, as_json) -> None:
    """Archive a prediction: no more training, scoring or targeting."""
    from plugin.api.predictions import view
    from plugin.predictions import definitions
    from plugin.store import transaction
    with cli_errors():
        _, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        with transaction(engine) as conn:
            body = view(conn, definitions.archive(conn, ws.id, found.id))
    click.echo(json.dumps(body)) if as_json else click.echo(f"archived #{body['id']} {body['name']}")


@predictions.command("unarchive")
@click.argument("prediction")
@workspace_option
@json_option
def unarchive(prediction, workspace, as_json) -> None:
    """Restore an archived prediction to the status it had before."""
    from plugin.api.predictions import view
    from plugin.predictions import definitions
    from plugin.store import transaction
    with cli_errors():
        app, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        with transaction(engine) as conn:
            body = view(conn, definitions.unarchive(conn, ws.id, found.id,
                                                    app.config["LIKELY"]["max_active_predictions"]))
    click.echo(json.dumps(body)) if as_json else click.echo(f"restored #{body['id']} {body['name']} ({body['status']})")


@click.command()
@click.argument("prediction")
@as_of_option
@click.option("--min-positives", type=int, default=None, help="Override the LIKELY_MIN_POSITIVES setting.")
@click.option("--min-negatives", type=int, default=None, help="Override the LIKELY_MIN_NEGATIVES setting.")
@workspace_option
@json_option
def train(prediction, as_of, min_positives, min_negatives, workspace, as_json) -> None:
    """Train a new model version: features as of (as-of − window), labels in the window after."""
    from plugin.predictions import models, training
    with cli_errors():
        app, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        settings = app.config["LIKELY"]
        options = training.TrainingOptions(
            min_positives=settings["min_positives"] if min_positives is None else min_positives,
            min_negatives=settings["min_negatives"] if min_negatives is None else min_negatives)
        with _bar(_user_count(engine, ws), "features", as_json) as bar:
            model_id = training.train(engine, found, _as_of(as_of), options, progress=bar.update)
        with engine.connect() as conn:
            summary = models.summary(conn, model_id)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"trained {found.name} v{summary['version']}: {_quality(summary['metrics'])}, "
               f"{summary['counts']['positives']} converters of {summary['counts']['eligible_users']} users")


@click.command()
@click.argument("prediction")
@as_of_option
@workspace_option
@json_option
def score(prediction, as_of, workspace, as_json) -> None:
    """Score every eligible user with the current model and publish the run atomically."""
    from plugin.predictions import scoring
    with cli_errors():
        _, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        with _bar(_user_count(engine, ws), "scoring", as_json) as bar:
            summary = scoring.score(engine, found, _as_of(as_of), progress=bar.update)
    if as_json:
        click.echo(json.dumps(summary))
        return
    users = ", ".join(f"{k} {v}" for k, v in summary["categories"]["users"].items())
    click.echo(f"scored {summary['users_scored']} users ({users}); expected conversions "
               f"{summary['expected_conversions']:.1f}")


@click.command()
@click.argument("prediction")
@click.option("--run", "run_id", type=int, default=None, help="One scoring run (default: every run now due).")
@workspace_option
@json_option
def backtest(prediction, run_id, workspace, as_json) -> None:
    """Compare past scoring runs, whose window has passed, with what users then did."""
    from plugin.predictions import backtest as backtests
    with cli_errors():
        _, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        results = backtests.run(engine, found, int(time.time()), run_id)
    if as_json:
        click.echo(json.dumps({"backtests": results}))
        return
    if not results:
        click.echo("no scoring run is due for a backtest (a run's window must have passed)")
    for r in results:
        m = r["metrics"]
        click.echo(f"run {r['run_id']}: {m['users']} users, expected {m['expected_conversions']:.1f} vs actual "
                   f"{m['actual_conversions']} conversions; {_quality(m)}")
        for c in m["categories"]:
            click.echo(f"  {c['category']}: {c['users']} users, expected {c['expected_conversions']:.1f}, "
                       f"actual {c['actual_conversions']}")


@click.command("scores")
@click.argument("prediction")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="Default: stdout.")
@workspace_option
def export_scores(prediction, output, workspace) -> None:
    """Write the prediction's current scores as CSV: user_id,score,category (the host's user ids)."""
    from plugin.predictions.export import write_scores_csv
    with cli_errors():
        _, engine, ws = _setup(workspace)
        found = _prediction(engine, ws, prediction)
        if output is None:
            write_scores_csv(engine, found, sys.stdout)
            return
        with open(output, "w", newline="", encoding="utf-8") as out:
            rows = write_scores_csv(engine, found, out)
    click.echo(f"wrote {rows} scores to {output}", err=True)
