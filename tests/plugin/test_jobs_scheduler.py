"""The scheduler over the persistent job store: restarts, downtime, two processes on one store."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from plugin.jobs import jobstore, scheduler
from plugin.jobs.plan import ANCHOR, JobSpec, every
from plugin.jobs.runner import run_key_for
from tests.plugin.jobs_support import job_settings, runs, wait_until

ROOT = Path(__file__).resolve().parents[2]
LIKELY = str(Path(sys.executable).parent / "likely")


@pytest.fixture
def hourly_tick(isolated_registry):
    """A job kind `tick` planned hourly on a fixed grid, counting its calls."""
    calls = []
    isolated_registry.register("tick", lambda engine, **params: calls.append(1) or {"ticked": len(calls)})
    isolated_registry.register_planner("tick", lambda conn, schedule: [
        JobSpec("tick", "tick", every(3600, "tick", start=ANCHOR))])
    return calls


def started(engine, settings):
    sched, holder = scheduler.build(engine, settings, BackgroundScheduler)
    scheduler.start(sched, engine, settings, holder)
    return sched, holder


def stopped_with_tick_due_at(engine, settings, when: datetime) -> None:
    """A scheduler ran, then went down with the tick job due at `when` (set while paused)."""
    sched, _ = started(engine, settings)
    sched.pause()
    sched.modify_job("tick", next_run_time=when)
    sched.shutdown(wait=True)


def test_the_web_app_factory_starts_no_scheduler(app, engine):
    from sqlalchemy import inspect
    app.test_client().get("/healthz")
    assert not inspect(engine).has_table(jobstore.TABLE)


def test_a_restarted_scheduler_picks_its_jobs_back_up_from_the_store(engine, database_url, hourly_tick):
    settings = job_settings(database_url)
    # Off the hourly grid: only the stored job (not a re-planned one) would fire at this time.
    due = (datetime.now(timezone.utc) + timedelta(seconds=2)).replace(microsecond=0)
    if due.minute == 0 and due.second == 0:
        due += timedelta(seconds=1)
    stopped_with_tick_due_at(engine, settings, due)
    assert hourly_tick == []
    sched, holder = started(engine, settings)
    try:
        [run] = wait_until(lambda: [r for r in runs(engine, "tick") if r["outcome"] == "ok"])
    finally:
        sched.shutdown(wait=True)
    assert run["run_key"] == run_key_for(due) and run["holder"] == holder


def test_runs_missed_during_downtime_are_coalesced_into_one(engine, database_url, hourly_tick):
    settings = job_settings(database_url)
    # Down since five hourly runs ago: the job's next run time is the first one it missed.
    down_since = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    stopped_with_tick_due_at(engine, settings, down_since)
    sched, _ = started(engine, settings)
    try:
        wait_until(lambda: runs(engine, "tick"))
        wait_until(lambda: jobstore.open_store(engine).lookup_job("tick").next_run_time > datetime.now(timezone.utc))
    finally:
        sched.shutdown(wait=True)  # waits for every run the executor was handed
    [run] = runs(engine, "tick")
    assert run["outcome"] == "ok" and len(hourly_tick) == 1
    # The one run stands for the latest missed time (the hour mark before it ran).
    latest_missed = run["started_at"].replace(minute=0, second=0, microsecond=0)
    assert run["run_key"] == run_key_for(latest_missed)


def _log_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def _attempted(path: Path) -> set[str]:
    return {r["run_key"] for r in _log_records(path)
            if r.get("job_id") == "tick" and ("started" in r["message"] or "already claimed" in r["message"])}


def test_two_scheduler_processes_on_one_store_run_each_job_once(database_url, engine, tmp_path):
    env = {**os.environ, "LIKELY_DATABASE_URL": database_url, "LIKELY_JOB_MODULES": "tests.plugin.fake_ticks",
           "LIKELY_RECONCILE_SECONDS": "2", "PYTHONPATH": str(ROOT), "LIKELY_TEST_TICK_SECONDS": "0.2"}
    logs = [tmp_path / "scheduler-a.log", tmp_path / "scheduler-b.log"]
    processes = [subprocess.Popen([LIKELY, "scheduler"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=log.open("w")) for log in logs]
    try:
        # Both processes fire the 1-second tick; wait until they have contended for some runs.
        wait_until(lambda: len(_attempted(logs[0]) & _attempted(logs[1])) >= 3, timeout=120)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    assert codes == [0, 0]
    ticks = runs(engine, "tick")
    per_key = Counter(r["run_key"] for r in ticks)
    contended = _attempted(logs[0]) & _attempted(logs[1])
    assert all(per_key[key] == 1 for key in contended)
    assert {r["outcome"] for r in ticks if r["run_key"] in contended} == {"ok"}
    for log in logs:
        assert any(r["message"].endswith("stopped") for r in _log_records(log))
