"""What should be scheduled: job specs computed from the store and the settings.

Job ids are stable (`rescore:<workspace>:<prediction_id>`), so reconciling twice changes
nothing, and a spec's fingerprint says when an existing job must be replaced.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, select

from plugin.jobs import registry
from plugin.store.tables import predictions, workspaces

log = logging.getLogger(__name__)

# Interval jobs count from a fixed instant, so every scheduler computes the same fire times
# (and so the same run keys) for a job, whenever it started.
ANCHOR = datetime(2020, 1, 1, tzinfo=timezone.utc)
HOUR = 3600
SEGMENT_REFRESH_SECONDS = HOUR
CAMPAIGN_RUN_SECONDS = 15 * 60
WRITEBACK_SECONDS = HOUR
OUTBOX_SWEEP_SECONDS = 60
WEEKLY_DAY = "mon"
MONTHLY_DAY = 1


@dataclass(frozen=True)
class Schedule:
    """The settings planners need."""

    hour: int = 3
    timezone: str = "UTC"
    reconcile_seconds: int = 300
    receipt_retention_days: int = 30
    job_run_retention_days: int = 90

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "Schedule":
        return cls(hour=settings["schedule_hour"], timezone=settings["timezone"],
                   reconcile_seconds=settings["reconcile_seconds"],
                   receipt_retention_days=settings["receipt_retention_days"],
                   job_run_retention_days=settings["job_run_retention_days"])

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, eq=True)
class JobSpec:
    """One job that should exist: its id, kind, trigger (as data) and keyword params."""

    id: str
    kind: str
    trigger: Mapping[str, Any]
    workspace_id: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        canonical = json.dumps({"kind": self.kind, "trigger": self.trigger, "workspace_id": self.workspace_id,
                                "params": self.params}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def apscheduler_trigger(self) -> BaseTrigger:
        spec = dict(self.trigger)
        kind = spec.pop("type")
        if kind == "cron":
            return CronTrigger(**spec)
        if kind == "interval":
            return IntervalTrigger(seconds=spec["seconds"], start_date=datetime.fromisoformat(spec["start"]),
                                   timezone=spec.get("timezone", "UTC"))
        raise ValueError(f"unknown trigger type {kind!r}")


def cron(schedule: Schedule, minute: int = 0, **fields: Any) -> dict[str, Any]:
    """At the configured hour (and `minute`) in the configured time zone; fields narrow the days."""
    return {"type": "cron", "hour": schedule.hour, "minute": minute, "timezone": schedule.timezone, **fields}


def every(seconds: int, job_id: str, start: datetime | None = None) -> dict[str, Any]:
    """Every `seconds`, offset by a stable hash of the job id so many workspaces' hourly jobs
    do not all fire in the same second."""
    if start is None:
        offset = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % seconds
        start = ANCHOR + timedelta(seconds=offset)
    return {"type": "interval", "seconds": seconds, "start": start.isoformat()}


def rescore_trigger(schedule: Schedule, cadence: str) -> dict[str, Any]:
    if cadence == "weekly":
        return cron(schedule, day_of_week=WEEKLY_DAY)
    if cadence == "monthly":
        return cron(schedule, day=MONTHLY_DAY)
    return cron(schedule)  # daily, the default for any unknown value too


def retrain_trigger(schedule: Schedule, retrain_days: int, created_at: datetime) -> dict[str, Any]:
    """Every `retrain_days` days at the configured hour, counted from the prediction's creation."""
    local = created_at.astimezone(schedule.tz).replace(hour=schedule.hour, minute=0, second=0, microsecond=0)
    days = max(1, retrain_days or 15)
    return {"type": "interval", "seconds": days * 86400, "start": (local + timedelta(days=days)).isoformat(),
            "timezone": schedule.timezone}


# --- the built-in planners ---------------------------------------------------------------

def system_jobs(conn: Connection, schedule: Schedule) -> Iterable[JobSpec]:
    yield JobSpec("reconcile", "reconcile", every(schedule.reconcile_seconds, "reconcile", start=ANCHOR),
                  params={"schedule": asdict(schedule)})
    yield JobSpec("prune_job_runs", "prune_job_runs", cron(schedule, minute=20),
                  params={"older_than_days": schedule.job_run_retention_days})
    yield JobSpec("deliver_outbox", "deliver_outbox", every(OUTBOX_SWEEP_SECONDS, "deliver_outbox"))
    yield JobSpec("purge_uninstalled", "purge_uninstalled", cron(schedule, minute=40))


def workspace_jobs(conn: Connection, schedule: Schedule) -> Iterable[JobSpec]:
    # An uninstalled workspace's jobs stop at the next reconcile (its data waits for the purge).
    active = select(workspaces.c.id, workspaces.c.slug).where(workspaces.c.status == "active")
    for workspace_id, slug in conn.execute(active.order_by(workspaces.c.id)):
        yield JobSpec(f"prune_receipts:{slug}", "prune_receipts", cron(schedule, minute=10), workspace_id,
                      {"older_than_days": schedule.receipt_retention_days})
        for kind, seconds in (("refresh_segments", SEGMENT_REFRESH_SECONDS),
                              ("run_campaigns", CAMPAIGN_RUN_SECONDS),
                              ("writeback_scores", WRITEBACK_SECONDS)):
            job_id = f"{kind}:{slug}"
            yield JobSpec(job_id, kind, every(seconds, job_id), workspace_id)


def prediction_jobs(conn: Connection, schedule: Schedule) -> Iterable[JobSpec]:
    """Only active predictions are kept fresh: demo and preview ones never update, and an
    archived or deleted prediction's jobs disappear at the next reconcile."""
    rows = conn.execute(
        select(predictions.c.id, predictions.c.schedule, predictions.c.retrain_days, predictions.c.created_at,
               workspaces.c.id.label("workspace_id"), workspaces.c.slug)
        .join(workspaces, workspaces.c.id == predictions.c.workspace_id)
        .where(predictions.c.status == "active", workspaces.c.status == "active").order_by(predictions.c.id))
    for row in rows:
        suffix = f"{row.slug}:{row.id}"
        params = {"prediction_id": row.id}
        yield JobSpec(f"rescore:{suffix}", "rescore", rescore_trigger(schedule, row.schedule), row.workspace_id, params)
        yield JobSpec(f"retrain:{suffix}", "retrain", retrain_trigger(schedule, row.retrain_days, row.created_at),
                      row.workspace_id, params)
        yield JobSpec(f"backtest:{suffix}", "backtest", cron(schedule, minute=30), row.workspace_id, params)


BUILTIN_PLANNERS = {"system": system_jobs, "workspaces": workspace_jobs, "predictions": prediction_jobs}


def desired_jobs(conn: Connection, schedule: Schedule) -> tuple[list[JobSpec], list[str]]:
    """Every job the planners want whose kind this process can run; and the kinds left out.

    A job whose kind no module registered is not scheduled (it could only fire and do nothing);
    it appears once its area registers the kind.
    """
    specs: dict[str, JobSpec] = {}
    unimplemented: set[str] = set()
    for name, planner in {**BUILTIN_PLANNERS, **registry.planners()}.items():
        for spec in planner(conn, schedule):
            if not registry.is_registered(spec.kind):
                unimplemented.add(spec.kind)
                continue
            if spec.id in specs and specs[spec.id] != spec:
                log.warning("planner %s wants job %s, which another planner already defines", name, spec.id)
                continue
            specs[spec.id] = spec
    return list(specs.values()), sorted(unimplemented)
