"""`likely campaigns …`: create, list, show, run and measure tiered campaigns; deliver the outbox."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from plugin.cli.common import app_engine, load_app
from plugin.errors import LikelyError


def _context(workspace: str):
    from plugin import workspaces
    app = load_app()
    engine = app_engine(app)
    with engine.connect() as conn:
        return engine, workspaces.get(conn, workspace)


def _print(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human(data)


def _guard(fn: Callable) -> Callable:
    """Project errors become a clean CLI error with their code, never a traceback."""
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LikelyError as error:
            detail = f" {json.dumps(error.details)}" if error.details else ""
            raise click.ClickException(f"{error.code}: {error.message}{detail}") from None
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


workspace_option = click.option("--workspace", default="default", show_default=True)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("campaigns")
def campaigns_group() -> None:
    """Tiered campaigns: bands of a prediction → channels, templates and offers."""


@campaigns_group.command("presets")
@json_option
def presets_command(as_json: bool) -> None:
    """The likelihood playbook presets."""
    from plugin.campaigns import presets
    _print(presets.listing(), as_json, lambda rows: [click.echo(f"{p['name']}: {p['description']}") for p in rows])


@campaigns_group.command("create")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="A campaign definition (JSON).")
@click.option("--preset", default=None, help="Start from a preset (see `likely campaigns presets`).")
@click.option("--name", default=None)
@click.option("--prediction", "prediction_id", type=int, default=None)
@click.option("--connector", "connectors", multiple=True, help="CHANNEL=CONNECTOR, e.g. email=smtp.")
@click.option("--ads-audience-id", default=None)
@click.option("--control-share", type=float, default=None)
@click.option("--activate", is_flag=True, help="Create it active (default: paused until `likely campaigns activate`).")
@workspace_option
@json_option
@_guard
def create_command(path, preset, name, prediction_id, connectors, ads_audience_id, control_share, activate,
                   workspace, as_json) -> None:
    """Create a campaign from a JSON file or a preset."""
    from plugin.api.requests import load
    from plugin.campaigns import definitions, presets
    from plugin.campaigns.schema import CampaignInput
    body: dict = json.loads(Path(path).read_text()) if path else {}
    if name:
        body["name"] = name
    if prediction_id:
        body["prediction_id"] = prediction_id
    if activate:
        body["status"] = "active"
    if preset:
        chosen = dict(c.split("=", 1) for c in connectors if "=" in c)
        body["tiers"] = presets.apply(preset, chosen, ads_audience_id, control_share)
        body["preset"] = preset
    engine, ws = _context(workspace)
    campaign, warnings = definitions.create(engine, ws.id, load(CampaignInput(), body))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    _print(campaign, as_json, lambda c: click.echo(f"campaign {c['id']} {c['name']!r} created ({c['status']})"))


@campaigns_group.command("list")
@workspace_option
@json_option
@_guard
def list_command(workspace: str, as_json: bool) -> None:
    """Campaigns of the workspace."""
    from plugin.campaigns import definitions
    engine, ws = _context(workspace)
    with engine.connect() as conn:
        rows = [definitions.as_dict(r) for r in definitions.list_rows(conn, ws.id)]
    _print(rows, as_json, lambda rs: [click.echo(f"{r['id']:>5}  {r['status']:<9} {r['name']}  "
                                                 f"(prediction {r['prediction_id']}, {len(r['tiers'])} tiers)")
                                      for r in rs])


@campaigns_group.command("show")
@click.argument("campaign_id", type=int)
@workspace_option
@_guard
def show_command(campaign_id: int, workspace: str) -> None:
    """A campaign's definition (JSON)."""
    from plugin.campaigns import definitions
    engine, ws = _context(workspace)
    with engine.connect() as conn:
        click.echo(json.dumps(definitions.as_dict(definitions.get_row(conn, ws.id, campaign_id)), indent=2))


def _status_command(verb: str, help_text: str) -> None:
    @campaigns_group.command(verb, help=help_text)
    @click.argument("campaign_id", type=int)
    @workspace_option
    @json_option
    @_guard
    def command(campaign_id: int, workspace: str, as_json: bool) -> None:
        from plugin.campaigns import definitions
        engine, ws = _context(workspace)
        if verb == "archive":
            campaign, warnings = definitions.archive(engine, ws.id, campaign_id), []
        elif verb == "unarchive":
            campaign, warnings = definitions.unarchive(engine, ws.id, campaign_id), []
        else:
            campaign, warnings = definitions.set_status(engine, ws.id, campaign_id,
                                                        "active" if verb == "activate" else "paused")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        _print(campaign, as_json, lambda c: click.echo(f"campaign {c['id']} {c['name']!r} is {c['status']}"))


_status_command("activate", "Activate a campaign: it sends on its schedule from now on.")
_status_command("pause", "Pause a campaign: nothing more is planned until it is activated.")
_status_command("archive", "Archive a campaign; its unsent messages are cancelled.")
_status_command("unarchive", "Restore an archived campaign (as paused).")


@campaigns_group.command("run")
@click.argument("campaign_id", type=int)
@click.option("--idempotency-key", default=None, help="Repeat it to get the same run back.")
@click.option("--deliver", is_flag=True, help="Then deliver the outbox until nothing is due.")
@workspace_option
@json_option
@_guard
def run_command(campaign_id: int, idempotency_key: str | None, deliver: bool, workspace: str, as_json: bool) -> None:
    """Plan a run now (writes its outbox), and optionally deliver it."""
    from plugin.campaigns import runs
    engine, ws = _context(workspace)
    made, created = runs.start_run(engine, ws.id, campaign_id, idempotency_key=idempotency_key)
    result: dict = {**made, "created": created}
    if deliver:
        result["delivery"] = _deliver_until_empty(engine, f"cli-{os.getpid()}", 1000)
    _print(result, as_json, lambda r: click.echo(
        f"run {r['id']} ({'new' if r['created'] else 'existing'}): " + ", ".join(
            f"{t['tier']} {t['targeted']}" for t in r["counts"].get("tiers", []))
        + (f"; delivered {r['delivery']}" if "delivery" in r else "")))


@campaigns_group.command("results")
@click.argument("campaign_id", type=int)
@workspace_option
@json_option
@_guard
def results_command(campaign_id: int, workspace: str, as_json: bool) -> None:
    """Per tier: targeted, sent, failed, skipped by reason; uplift once the window has passed."""
    from plugin.campaigns import results
    engine, ws = _context(workspace)
    with engine.connect() as conn:
        data = results.campaign_results(conn, ws.id, campaign_id)
    _print(data, as_json, _human_results)


def _human_results(data: dict) -> None:
    click.echo(f"runs: {data['runs']} (measured: {data['runs_measured']})")
    for t in data["tiers"]:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(t["skipped"].items())) or "none"
        click.echo(f"{t['tier']}: targeted {t['targeted']}, sent {t['sent']}, pending {t['pending']}, "
                   f"failed {t['failed']}, dead {t['dead']}, held {t['held']}, unknown {t['unknown']}; "
                   f"skipped: {skipped}")
        outcome = t.get("outcomes")
        if outcome and outcome["uplift"]:
            u = outcome["uplift"]
            click.echo(f"  uplift {u['difference']:+.2%} (95% CI {u['ci95'][0]:+.2%} … {u['ci95'][1]:+.2%}); "
                       f"expected {outcome['expected_conversions']}, actual {outcome['actual_conversions']}")


@campaigns_group.command("deliver")
@click.option("--worker-id", default=None, help="Defaults to host:pid.")
@click.option("--limit", default=1000, show_default=True, type=int, help="Rows claimed per pass.")
@click.option("--until-empty/--once", default=True, help="Repeat passes until nothing is due.")
@click.option("--lease-seconds", default=None, type=click.IntRange(min=3),
              help="Claim lease, renewed while working [default: LIKELY_OUTBOX_LEASE_SECONDS, else 30].")
def deliver_command(worker_id: str | None, limit: int, until_empty: bool, lease_seconds: int | None) -> None:
    """Deliver due outbox rows (all workspaces)."""
    from plugin.campaigns.delivery import deliver_outbox
    app = load_app()
    engine = app_engine(app)
    lease_seconds = lease_seconds or app.config["LIKELY"]["outbox_lease_seconds"]
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    if until_empty:
        totals = _deliver_until_empty(engine, worker_id, limit, lease_seconds)
    else:
        totals = deliver_outbox(engine, worker_id, limit, lease_seconds=lease_seconds)
    click.echo(json.dumps(totals))


def _deliver_until_empty(engine, worker_id: str, limit: int, lease_seconds: int = 30) -> dict[str, int]:
    from plugin.campaigns.delivery import deliver_outbox
    totals: dict[str, int] = {}
    while True:
        counts = deliver_outbox(engine, worker_id, limit, lease_seconds=lease_seconds)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if not counts.get("claimed"):
            return totals
        print(json.dumps(counts), file=sys.stderr, flush=True)  # progress, one line per pass


@campaigns_group.command("release")
@click.option("--connector", default=None, help="Only this connector's held messages.")
@workspace_option
def release_command(connector: str | None, workspace: str) -> None:
    """Queue again the messages held for a configuration problem, once it is fixed."""
    from plugin.campaigns.outbox import release_held
    engine, ws = _context(workspace)
    click.echo(f"released {release_held(engine, ws.id, connector, int(time.time()))} message(s)")
