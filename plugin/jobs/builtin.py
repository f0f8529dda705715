"""The job kinds the jobs area owns: reconcile and housekeeping."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from sqlalchemy import Engine, delete

from plugin.jobs import jobstore
from plugin.jobs.plan import Schedule
from plugin.jobs.registry import register
from plugin.store import transaction
from plugin.store.tables import job_runs, webhook_receipts
from plugin.store.types import utcnow


def reconcile(engine: Engine, *, schedule: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Align the job store with the plan (active predictions, workspaces, system jobs)."""
    return jobstore.reconcile(engine, Schedule(**schedule) if schedule else Schedule())


def prune_receipts(engine: Engine, *, workspace_id: int, older_than_days: int = 30) -> dict[str, int]:
    """Forget webhook receipts older than the retention: by then no host redelivers that id
    (Standard Webhooks retries span hours to days), and events stay idempotent by content."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    with transaction(engine) as conn:
        deleted = conn.execute(delete(webhook_receipts).where(webhook_receipts.c.workspace_id == workspace_id,
                                                              webhook_receipts.c.received_at < cutoff)).rowcount
    return {"deleted": deleted}


def prune_job_runs(engine: Engine, *, older_than_days: int = 90) -> dict[str, int]:
    """Trim the run log; in-progress runs are kept whatever their age."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    with transaction(engine) as conn:
        deleted = conn.execute(delete(job_runs).where(job_runs.c.started_at < cutoff,
                                                      job_runs.c.outcome != "running")).rowcount
    return {"deleted": deleted}


register("reconcile", reconcile)
register("prune_receipts", prune_receipts)
register("prune_job_runs", prune_job_runs)


def purge_uninstalled(engine: Engine) -> dict[str, int]:
    """Delete the data of workspaces uninstalled longer ago than the grace period."""
    from plugin import installs, settings
    grace = settings.load("instance").get("uninstall_grace_days", 30)
    return {"workspaces_purged": len(installs.purge_uninstalled(engine, grace_days=grace))}


register("purge_uninstalled", purge_uninstalled)
