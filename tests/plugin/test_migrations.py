"""The migrations build exactly the schema the code declares, on both backends, in one line."""
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin.store import make_engine
from plugin.store.migrate import alembic_config, include_object, upgrade
from plugin.store.tables import metadata


def test_migrated_schema_matches_the_tables(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_default_workspace_exists_after_migration(engine):
    from plugin import workspaces
    with engine.connect() as conn:
        assert workspaces.get(conn, "default").slug == "default"


def test_apschedulers_own_table_is_not_a_schema_difference(engine):
    from plugin.jobs.jobstore import open_store
    open_store(engine)  # APScheduler creates apscheduler_jobs itself, as a scheduler does
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        assert "apscheduler_jobs" in context.bind.dialect.get_table_names(conn)
        assert compare_metadata(context, metadata) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """A store with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"likely_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_history_is_one_line():
    """One head, no merge points, no branches: each migration follows exactly one other."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()} (linearise the new migration)"
    revisions = list(script.walk_revisions())
    assert all(not isinstance(r.down_revision, (tuple, list)) for r in revisions), "a merge migration"
    assert sum(r.down_revision is None for r in revisions) == 1


def test_upgrading_step_by_step_builds_the_declared_schema(empty_database_url):
    script = ScriptDirectory.from_config(alembic_config(empty_database_url))
    steps = [r.revision for r in reversed(list(script.walk_revisions()))]
    for revision in steps:
        upgrade(empty_database_url, revision)
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == steps[-1]
            context = MigrationContext.configure(conn, opts={"include_object": include_object})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
