"""APScheduler's persistent job store on our database, and reconciliation with the plan.

Several scheduler processes share the one `apscheduler_jobs` table. APScheduler 3 does not
coordinate them (its FAQ says so); likely makes that safe by (1) the lease and run-key checks
in `leases.py`, which decide who runs a fired job, and (2) tolerating the races on this table
below: a job updated or removed by another process in between is not an error.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError

from plugin.jobs.plan import JobSpec, Schedule, desired_jobs

log = logging.getLogger(__name__)

TABLE = "apscheduler_jobs"
RUNNER = "plugin.jobs.runner:scheduled"
# APScheduler's own per-process cap. Above 1 on purpose: an overrun in this process must reach
# the lease, which records the run as skipped, instead of being dropped with only a warning.
MAX_INSTANCES = 3
# Coalesce missed runs into one; no grace limit, so after any downtime each job runs once
# (its latest missed run) instead of waiting for the next period.
COALESCE = True
MISFIRE_GRACE_SECONDS = None


class LikelyJobStore(SQLAlchemyJobStore):
    """SQLAlchemyJobStore on the store's engine, tolerant of other schedulers' changes."""

    def __init__(self, engine: Engine):
        super().__init__(engine=engine, tablename=TABLE)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        # APScheduler 3 processes due jobs once more after shutdown() (its loop wakes without
        # re-checking the state) and, the pool being closed, advances them unrun. A stopping
        # scheduler therefore sees nothing due: the run stays in the store for the next one.
        if self._scheduler is not None and self._scheduler.state == STATE_STOPPED:
            return []
        return super().get_due_jobs(now)

    def update_job(self, job: Job) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            # Another scheduler's reconcile removed it while this one was running it.
            log.info("job %s was removed by another scheduler; not rescheduling it", job.id)

    def shutdown(self) -> None:
        # The engine belongs to the process, not to APScheduler: do not dispose it here.
        pass


# Job objects need a scheduler for their defaults; this one is never started.
_job_factory = BackgroundScheduler(timezone=timezone.utc)


def open_store(engine: Engine) -> LikelyJobStore:
    """The job store, its table created if this is the first scheduler ever."""
    store = LikelyJobStore(engine)
    try:
        store.start(_job_factory, "default")
    except (IntegrityError, ProgrammingError):
        # Two schedulers creating the table at once on PostgreSQL: the loser's CREATE fails
        # although the table now exists. Starting again finds it.
        store.start(_job_factory, "default")
    return store


def job_for(spec: JobSpec, now: datetime | None = None) -> Job:
    trigger = spec.apscheduler_trigger()
    now = now or datetime.now(timezone.utc)
    return Job(_job_factory, id=spec.id, name=spec.fingerprint(), func=RUNNER, trigger=trigger,
               executor="default", args=(),
               kwargs={"kind": spec.kind, "workspace_id": spec.workspace_id, "params": dict(spec.params)},
               misfire_grace_time=MISFIRE_GRACE_SECONDS, coalesce=COALESCE, max_instances=MAX_INSTANCES,
               next_run_time=trigger.get_next_fire_time(None, now))


def reconcile(engine: Engine, schedule: Schedule) -> dict[str, int]:
    """Make the job store hold exactly the planned jobs.

    An unchanged job is left alone — its next run time included, so runs missed while no
    scheduler was up still fire (coalesced) on restart. A changed spec replaces the job;
    a job nobody plans any more (archived or deleted prediction, removed workspace) goes.
    """
    store = open_store(engine)
    with engine.connect() as conn:
        specs, unimplemented = desired_jobs(conn, schedule)
    existing = {job.id: job for job in store.get_all_jobs()}
    counts = {"added": 0, "replaced": 0, "removed": 0, "unchanged": 0, "unimplemented_kinds": len(unimplemented)}
    for spec in specs:
        current = existing.get(spec.id)
        if current is not None and current.name == spec.fingerprint():
            counts["unchanged"] += 1
            continue
        job = job_for(spec)
        if current is None:
            try:
                store.add_job(job)
                counts["added"] += 1
                continue
            except ConflictingIdError:
                pass  # another scheduler added it a moment ago; ours is the same plan
        store.update_job(job)
        counts["replaced"] += 1
    planned = {spec.id for spec in specs}
    for job_id in existing.keys() - planned:
        try:
            store.remove_job(job_id)
            counts["removed"] += 1
        except JobLookupError:
            pass
    return counts


def scheduled_jobs(engine: Engine) -> list[Job]:
    """The jobs in the store, soonest first."""
    return open_store(engine).get_all_jobs()
