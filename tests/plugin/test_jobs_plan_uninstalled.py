"""An uninstalled workspace gets no scheduled jobs."""
from sqlalchemy import update

from plugin import workspaces
from plugin.jobs.plan import Schedule, prediction_jobs, workspace_jobs
from plugin.store.tables import workspaces as workspaces_table


def test_uninstalled_workspaces_are_not_planned(engine):
    acme = workspaces.ensure(engine, "acme")
    with engine.begin() as conn:
        conn.execute(update(workspaces_table).where(workspaces_table.c.id == acme.id).values(status="uninstalled"))
    with engine.connect() as conn:
        ids = {spec.id for spec in workspace_jobs(conn, Schedule())}
        ids |= {spec.id for spec in prediction_jobs(conn, Schedule())}
    assert any(i.endswith(":default") for i in ids)
    assert not any("acme" in i for i in ids)
