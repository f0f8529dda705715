"""Fixtures for the predictions tests: small hand-made data, and a demo store trained once per session.

The trained store is built once per backend (demo data through the ingest writer, a prediction
trained and scored) and every test gets its own copy: a file copy on SQLite, a
`CREATE DATABASE … TEMPLATE` on PostgreSQL. tests/conftest.py registers this module as a plugin,
so the fixtures need no import; the helpers do.
"""
from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin import create_app, demo
from plugin.ingest import writer
from plugin.predictions import definitions, scoring, training
from plugin.store import make_engine, transaction
from plugin.store.migrate import upgrade
from tests.helpers import API_KEY, WEBHOOK_SECRET

DAY = 86_400
END = 1_748_736_000            # 2025-06-01T00:00:00Z: the demo data stops here
AS_OF = END - 14 * DAY         # trained and scored as of here, so a 14-day backtest window has passed
DEMO_USERS = 5_000
SCORED = "purchase within 14 days"


def write(engine, rows: list[dict], users: list[dict] | None = None, workspace_id: int = 1) -> None:
    """Events (and attributes) through the one ingest writer, as webhooks would write them."""
    with transaction(engine) as conn:
        if users:
            writer.upsert_users(conn, workspace_id, users)
        if rows:
            writer.write_events(conn, workspace_id, rows)


def event(user: str, name: str, ts: int, **properties) -> dict:
    return {"user_id": user, "event": name, "timestamp": ts, "properties": properties or None}


def new_prediction(engine, workspace_id: int = 1, max_active: int = 5, **fields):
    data = {"name": "p", "goal_event": "purchase", "goal_condition": None, "window_days": 14, "audience": None,
            "status": "active", **fields}
    with transaction(engine) as conn:
        return definitions.create(conn, workspace_id, data, max_active)


def _build(url: str) -> None:
    engine = make_engine(url)
    demo.load(engine, 1, DEMO_USERS, seed=3, end_ts=END)
    prediction = new_prediction(engine, name=SCORED)
    training.train(engine, prediction, AS_OF)
    with engine.connect() as conn:
        prediction = definitions.get(conn, 1, prediction.id)
    scoring.score(engine, prediction, AS_OF, chunk_users=1_000)
    engine.dispose()


@pytest.fixture(scope="session")
def trained_sqlite(tmp_path_factory, sqlite_template) -> str:
    path = tmp_path_factory.mktemp("trained") / "likely.sqlite"
    shutil.copy(sqlite_template, path)
    _build(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def trained_postgres(postgres_server):
    name = f"likely_trained_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    _build(url)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def trained_url(request, tmp_path):
    """A private copy of the trained demo store."""
    if request.param == "sqlite":
        path = tmp_path / "likely.sqlite"
        shutil.copy(request.getfixturevalue("trained_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("trained_postgres")
    server = request.getfixturevalue("postgres_server")
    name = f"likely_copy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Trained:
    engine: object
    app: object
    client: object
    url: str

    def prediction(self, name: str = SCORED):
        with self.engine.connect() as conn:
            return definitions.find(conn, 1, name)


@pytest.fixture
def trained(trained_url):
    """The trained demo store with an engine, an app and a client on it."""
    engine = make_engine(trained_url)
    app = create_app({"database_url": trained_url, "webhook_secrets": [WEBHOOK_SECRET], "api_keys": [API_KEY]})
    yield Trained(engine=engine, app=app, client=app.test_client(), url=trained_url)
    app.extensions["likely_engine"].dispose()
    engine.dispose()


def seed_goal_event(url: str, name: str = "purchase") -> None:
    """One `name` event in the default workspace: a goal never seen is refused at creation (issue 16)."""
    import time as _time

    from plugin import workspaces
    engine = make_engine(url)
    try:
        write(engine, [event("seed-user", name, int(_time.time()) - DAY)],
              workspace_id=workspaces.ensure(engine, "default").id)
    finally:
        engine.dispose()
