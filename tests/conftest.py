"""Fixtures: a migrated store on SQLite and on PostgreSQL, the app, a client, signing."""
from __future__ import annotations

import os
import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin import create_app
from plugin.store import make_engine
from plugin.store.migrate import upgrade
from plugin.store.tables import metadata
from tests.helpers import API_KEY, WEBHOOK_SECRET

# The trained demo store (built once per session) and an app set up as a host installs it.
pytest_plugins = ["tests.plugin.predictions_fixtures", "tests.plugin.hosting"]

POSTGRES_ENV = "LIKELY_TEST_POSTGRES_URL"
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server URL. CI sets LIKELY_TEST_POSTGRES_URL, which makes PostgreSQL mandatory."""
    url = os.environ.get(POSTGRES_ENV)
    required = bool(url)
    url = url or LOCAL_POSTGRES
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        message = f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)}: {error}"
        if required:
            pytest.fail(f"{POSTGRES_ENV} is set but {message}")
        pytest.skip(f"{message} (set {POSTGRES_ENV} to make these tests mandatory)")
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str):
    """A fresh database for this test session, migrated once, dropped at the end."""
    name = f"likely_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "likely.sqlite"
    upgrade(f"sqlite:///{path}")
    return str(path)


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    names = [t.name for t in metadata.sorted_tables if t.name != "workspaces"]
    with engine.begin() as conn:
        if names:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        conn.execute(text("DELETE FROM workspaces WHERE slug <> 'default'"))
        # The default workspace survives the reset: so must nothing it was given (settings, secrets).
        conn.execute(text("UPDATE workspaces SET settings = '{}', secret_settings = NULL"))
        # APScheduler's own table (not in our metadata) exists once a scheduler test has run.
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A migrated, empty store (with the `default` workspace) on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "likely.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app_settings(database_url) -> dict:
    return {"database_url": database_url, "webhook_secrets": [WEBHOOK_SECRET], "api_keys": [API_KEY]}


@pytest.fixture
def app(app_settings):
    app = create_app(app_settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["likely_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def _restore_logging():
    """Commands under test install likely's JSON log handler on the root logger; take it off
    again so a later test does not write into a closed captured stream."""
    import logging
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
