"""The scheduler process: APScheduler 3 over the persistent job store, running jobs through
the leases so that one or two scheduler processes run each job once.

Started only by `likely scheduler` (never by the web app factory).
"""
from __future__ import annotations

import logging
import signal
from dataclasses import asdict
from datetime import datetime, timezone
from types import FrameType
from typing import Any, Mapping

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from plugin.jobs import jobstore, runner
from plugin.jobs.plan import Schedule

log = logging.getLogger(__name__)

THREADS = 8
# APScheduler sleeps until the next run time *it* knows of; jobs another scheduler process added
# or moved are not announced. A local no-op job wakes this one to re-read the store at least
# this often (and at least once per reconcile interval).
MAX_SLEEP_SECONDS = 15


def _look_again() -> None:
    """The local wake-up job: running it is the point (the scheduler then re-reads the store)."""


class LeasedExecutor(ThreadPoolExecutor):
    """A thread pool that runs each fired job through `runner.execute` with this process's engine,
    its holder name and the scheduled time, which becomes the run key.

    APScheduler's documented extension point for executors is `_do_submit_job`.
    """

    def __init__(self, engine: Engine, holder: str, lease_seconds: int, max_workers: int = THREADS):
        super().__init__(max_workers)
        self.engine = engine
        self.holder = holder
        self.lease_seconds = lease_seconds

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        def done(future) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(self._run, job, run_times).add_done_callback(done)

    def _run(self, job: Job, run_times: list[datetime]) -> list[JobExecutionEvent]:
        events = []
        for run_time in run_times:
            if job.misfire_grace_time is not None:
                late = (datetime.now(timezone.utc) - run_time).total_seconds()
                if late > job.misfire_grace_time:
                    log.warning("job %s: run of %s missed by %.0fs, beyond its grace time", job.id, run_time, late)
                    events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                    continue
            try:
                result = job.func(self.engine, job.id, run_time, holder=self.holder,
                                  lease_seconds=self.lease_seconds, **job.kwargs)
            except Exception as error:  # store unreachable while claiming/recording: the next fire retries
                log.exception("job %s: could not be run", job.id)
                events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time,
                                                exception=error))
                continue
            events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time,
                                            retval=result))
            if job.kwargs.get("kind") == "reconcile" and self._scheduler is not None:
                # The store's jobs may have changed: look again instead of sleeping on old times.
                self._scheduler.wakeup()
        return events


def build(engine: Engine, settings: Mapping[str, Any],
          scheduler_class: type[BaseScheduler] = BlockingScheduler) -> tuple[BaseScheduler, str]:
    """A scheduler over the shared job store; returns it with its lease holder name."""
    holder = runner.holder_name()
    executor = LeasedExecutor(engine, holder, settings["job_lease_seconds"])
    scheduler = scheduler_class(jobstores={"default": jobstore.LikelyJobStore(engine), "local": MemoryJobStore()},
                                executors={"default": executor, "local": ThreadPoolExecutor(1)},
                                timezone=timezone.utc,
                                job_defaults={"coalesce": jobstore.COALESCE, "max_instances": jobstore.MAX_INSTANCES,
                                              "misfire_grace_time": jobstore.MISFIRE_GRACE_SECONDS})
    scheduler.add_job(_look_again, "interval", id="look-again", jobstore="local", executor="local",
                      seconds=min(MAX_SLEEP_SECONDS, settings["reconcile_seconds"]), coalesce=True, max_instances=1)
    return scheduler, holder


def reconcile_now(engine: Engine, settings: Mapping[str, Any], holder: str) -> runner.RunResult:
    """The start-up reconcile, through the runner so it is leased and in the run log."""
    schedule = Schedule.from_settings(settings)
    return runner.execute(engine, "reconcile", None, kind="reconcile", params={"schedule": asdict(schedule)},
                          holder=holder, lease_seconds=settings["job_lease_seconds"])


def start(scheduler: BaseScheduler, engine: Engine, settings: Mapping[str, Any], holder: str) -> None:
    """Reconcile, then start. The job store's table exists before APScheduler reads it."""
    jobstore.open_store(engine)
    result = reconcile_now(engine, settings, holder)
    log.info("scheduler %s starting (reconcile: %s %s)", holder, result.outcome, dict(result.counts or {}))
    scheduler.start()


def run(engine: Engine, settings: Mapping[str, Any]) -> None:
    """`likely scheduler`: block until SIGTERM/SIGINT, then let running jobs finish."""
    scheduler, holder = build(engine, settings)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler %s stopping on %s; waiting for running jobs", holder, signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    start(scheduler, engine, settings, holder)
    log.info("scheduler %s stopped", holder)
