"""The `likely` command line: one module per command group, all registered here."""
from __future__ import annotations

import click

from plugin.cli import campaigns, db, demo, imports, jobs, predictions, processes, secrets, workspaces


@click.group()
def cli() -> None:
    """likely: event-likelihood predictions for your messaging platform."""


for command in (db.db, imports.import_group, workspaces.workspaces_group, secrets.secrets_group,
                processes.serve, processes.scheduler_command, processes.worker_command, jobs.jobs_group,
                demo.demo, campaigns.campaigns_group):
    cli.add_command(command)
predictions.register(cli)


def main() -> None:
    cli(prog_name="likely")
