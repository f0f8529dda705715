"""Reconciliation: the job store holds exactly the planned jobs, with stable ids and triggers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, update

from plugin import workspaces
from plugin.jobs import jobstore
from plugin.jobs.plan import Schedule
from plugin.store.tables import predictions
from tests.plugin.jobs_support import add_prediction

PREDICTION_KINDS = ("rescore", "retrain", "backtest")


@pytest.fixture
def prediction_kinds(isolated_registry):
    """Stand-ins for plugin/predictions' kinds: planning only needs them to be registered."""
    for kind in PREDICTION_KINDS:
        isolated_registry.register(kind, lambda engine, **params: {})
    return isolated_registry


def stored(engine) -> dict:
    return {job.id: job for job in jobstore.scheduled_jobs(engine)}


def fire_times(job, count: int, after: datetime) -> list[datetime]:
    times, previous = [], None
    now = after
    for _ in range(count):
        nxt = job.trigger.get_next_fire_time(previous, now)
        times.append(nxt)
        previous, now = nxt, nxt + timedelta(seconds=1)
    return times


def test_system_and_workspace_jobs_of_the_kinds_this_build_implements(engine, isolated_registry):
    workspaces.ensure(engine, "acme")
    # As in a build where the audiences area is not merged: its kind has no implementation.
    isolated_registry.unregister("refresh_segments")
    counts = jobstore.reconcile(engine, Schedule())
    jobs = stored(engine)
    assert {"reconcile", "prune_job_runs", "prune_receipts:default", "prune_receipts:acme"} <= set(jobs)
    assert all(isolated_registry.is_registered(job.kwargs["kind"]) for job in jobs.values())
    assert not any(job_id.startswith("refresh_segments:") for job_id in jobs)
    assert counts["added"] == len(jobs) and counts["unimplemented_kinds"] >= 1


def test_active_predictions_get_rescore_retrain_and_backtest_jobs(engine, prediction_kinds):
    daily = add_prediction(engine, name="daily")
    weekly = add_prediction(engine, name="weekly", schedule="weekly")
    monthly = add_prediction(engine, name="monthly", schedule="monthly", retrain_days=30)
    for status in ("demo", "preview", "archived"):
        add_prediction(engine, name=status, status=status)
    schedule = Schedule(hour=4, timezone="Europe/Paris")
    jobstore.reconcile(engine, schedule)
    jobs = stored(engine)
    planned = {job_id for job_id in jobs if job_id.split(":")[0] in PREDICTION_KINDS}
    assert planned == {f"{kind}:default:{pid}" for kind in PREDICTION_KINDS for pid in (daily, weekly, monthly)}
    paris = ZoneInfoOf("Europe/Paris")
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    # Rescoring at 04:00 Paris time: daily, on Mondays, on the 1st.
    daily_times = fire_times(jobs[f"rescore:default:{daily}"], 3, start)
    assert [t.astimezone(paris).hour for t in daily_times] == [4, 4, 4]
    assert [(b - a).days for a, b in zip(daily_times, daily_times[1:])] == [1, 1]
    assert {t.astimezone(paris).strftime("%a %H:%M") for t in fire_times(jobs[f"rescore:default:{weekly}"], 3, start)} \
        == {"Mon 04:00"}
    assert {t.astimezone(paris).strftime("%d %H:%M") for t in fire_times(jobs[f"rescore:default:{monthly}"], 3, start)} \
        == {"01 04:00"}
    # Retraining every retrain_days days, counted from creation (2026-01-10), at 04:00 Paris.
    retrain = fire_times(jobs[f"retrain:default:{daily}"], 2, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [t.astimezone(paris).strftime("%Y-%m-%d %H:%M") for t in retrain] == ["2026-01-25 04:00", "2026-02-09 04:00"]
    monthly_retrain = fire_times(jobs[f"retrain:default:{monthly}"], 2, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert (monthly_retrain[1] - monthly_retrain[0]).days == 30
    assert jobs[f"rescore:default:{daily}"].kwargs == {"kind": "rescore", "workspace_id": 1,
                                                       "params": {"prediction_id": daily}}
    assert jobs[f"rescore:default:{daily}"].coalesce is True


def ZoneInfoOf(name):  # noqa: N802  (reads like the type it returns)
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def test_archived_and_deleted_predictions_lose_their_jobs(engine, prediction_kinds):
    kept = add_prediction(engine, name="kept")
    archived = add_prediction(engine, name="to-archive")
    deleted = add_prediction(engine, name="to-delete")
    jobstore.reconcile(engine, Schedule())
    with engine.begin() as conn:
        conn.execute(update(predictions).where(predictions.c.id == archived).values(status="archived"))
        conn.execute(delete(predictions).where(predictions.c.id == deleted))
    counts = jobstore.reconcile(engine, Schedule())
    assert counts["removed"] == 6
    ids = set(stored(engine))
    assert f"rescore:default:{kept}" in ids
    assert not any(job_id.endswith((f":{archived}", f":{deleted}")) for job_id in ids)


def test_reconcile_is_idempotent_and_keeps_next_run_times(engine, prediction_kinds):
    pid = add_prediction(engine)
    jobstore.reconcile(engine, Schedule())
    store = jobstore.open_store(engine)
    job = store.lookup_job(f"rescore:default:{pid}")
    # A run missed while no scheduler was up: reconciling must not move it into the future.
    missed = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
    job._modify(next_run_time=missed)
    store.update_job(job)
    counts = jobstore.reconcile(engine, Schedule())
    assert counts["added"] == counts["replaced"] == counts["removed"] == 0
    assert store.lookup_job(f"rescore:default:{pid}").next_run_time == missed


def test_a_changed_schedule_replaces_the_job(engine, prediction_kinds):
    pid = add_prediction(engine)
    jobstore.reconcile(engine, Schedule(hour=3))
    with engine.begin() as conn:
        conn.execute(update(predictions).where(predictions.c.id == pid).values(schedule="weekly"))
    counts = jobstore.reconcile(engine, Schedule(hour=5))
    assert counts["replaced"] >= 3
    job = stored(engine)[f"rescore:default:{pid}"]
    assert {t.strftime("%a %H") for t in fire_times(job, 2, datetime(2026, 3, 1, tzinfo=timezone.utc))} == {"Mon 05"}


def test_registered_planners_and_kinds_add_jobs(engine, isolated_registry):
    from plugin.jobs.plan import JobSpec, every
    isolated_registry.register("refresh_segments", lambda engine, **params: {})
    isolated_registry.register_planner("custom", lambda conn, schedule: [JobSpec("custom:1", "prune_job_runs",
                                                                               every(600, "custom:1"))])
    jobstore.reconcile(engine, Schedule())
    ids = set(stored(engine))
    assert {"custom:1", "refresh_segments:default"} <= ids
