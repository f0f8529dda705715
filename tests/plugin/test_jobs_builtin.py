"""The job kinds the jobs area owns: housekeeping of webhook receipts and of the run log."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from plugin import workspaces
from plugin.jobs.builtin import prune_job_runs, prune_receipts
from plugin.store.tables import job_runs, webhook_receipts
from plugin.store.types import utcnow


def test_prune_receipts_deletes_only_old_receipts_of_its_workspace(engine):
    acme = workspaces.ensure(engine, "acme")
    now = utcnow()
    with engine.begin() as conn:
        for workspace_id in (1, acme.id):
            for webhook_id, age in (("old", 31), ("recent", 29)):
                conn.execute(insert(webhook_receipts).values(workspace_id=workspace_id, webhook_id=webhook_id,
                                                             endpoint="events", response={},
                                                             received_at=now - timedelta(days=age)))
    assert prune_receipts(engine, workspace_id=1, older_than_days=30) == {"deleted": 1}
    with engine.connect() as conn:
        left = set(conn.execute(select(webhook_receipts.c.workspace_id, webhook_receipts.c.webhook_id)).all())
    assert left == {(1, "recent"), (acme.id, "old"), (acme.id, "recent")}


def test_prune_job_runs_keeps_recent_and_in_progress_runs(engine):
    now = utcnow()
    with engine.begin() as conn:
        for key, age, outcome in (("a", 100, "ok"), ("b", 100, "running"), ("c", 10, "failed")):
            conn.execute(insert(job_runs).values(job_id="j", kind="k", run_key=key, holder="h", outcome=outcome,
                                                 started_at=now - timedelta(days=age)))
    assert prune_job_runs(engine, older_than_days=90) == {"deleted": 1}
    with engine.connect() as conn:
        assert set(conn.execute(select(job_runs.c.run_key)).scalars()) == {"b", "c"}
