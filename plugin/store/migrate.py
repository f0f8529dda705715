"""Alembic, configured in code so `likely db upgrade` needs no ini file."""
from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

# Package data: on disk beside the module in a wheel or a checkout (Alembic needs a real folder).
MIGRATIONS = resources.files("plugin.store").joinpath("migrations")

# Tables that live in the store but are created and owned by a library, not by our migrations:
# APScheduler's persistent job store creates `apscheduler_jobs` itself.
EXTERNAL_TABLES = frozenset({"apscheduler_jobs"})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: leave library-owned tables out of autogenerate and schema comparison."""
    return not (type_ == "table" and name in EXTERNAL_TABLES)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)
