"""What every command shares: the app built from the environment, its engine, process set-up."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import click
from flask import Flask

from plugin.errors import LikelyError, SettingsError


def load_app() -> Flask:
    """The app from the environment's settings; bad settings are a clean one-line failure."""
    from plugin import create_app
    try:
        return create_app()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def app_engine(app: Flask):
    return app.extensions["likely_engine"]


def start_process(app: Flask) -> dict:
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


@contextmanager
def cli_errors() -> Iterator[None]:
    """Project errors become a clean CLI failure naming what is wrong (and the details, e.g. counts)."""
    try:
        yield
    except LikelyError as error:
        details = f"\n{json.dumps(error.details, indent=2, default=str)}" if error.details else ""
        raise click.ClickException(f"{error.message} [{error.code}]{details}") from None
