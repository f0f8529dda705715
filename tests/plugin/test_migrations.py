"""The migrations build exactly the schema the code declares, on both backends."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from plugin.store.migrate import include_object
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
