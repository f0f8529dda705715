"""Exactly once, decided in the database: one run per scheduled time, one run in progress per job."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from plugin.jobs import runner
from plugin.jobs.jobstore import job_for
from plugin.jobs.leases import STALE_RUN_ERROR, renew
from plugin.jobs.plan import JobSpec, every
from plugin.jobs.scheduler import LeasedExecutor
from plugin.store import make_engine
from plugin.store.tables import job_leases, job_runs
from plugin.store.types import utcnow
from tests.plugin.jobs_support import runs

SCHEDULED = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def second_engine(database_url):
    """Another scheduler process's engine: its own pool and connections to the same store."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


class Gate:
    """A job kind that blocks until released, so runs overlap deterministically."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, engine, **params):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(20), "test never released the job"
        return {"done": 1}


def in_thread(fn, *args, **kwargs):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn(*args, **kwargs)))
    thread.start()
    return thread, result


def test_two_schedulers_firing_the_same_time_run_it_once(engine, second_engine, isolated_registry):
    gate = Gate()
    isolated_registry.register("gate", gate)
    first, first_result = in_thread(runner.execute, engine, "gate", SCHEDULED, kind="gate", holder="scheduler-a")
    assert gate.entered.wait(20)
    # The second scheduler fires the same scheduled time while the first is still running it...
    second = runner.execute(second_engine, "gate", SCHEDULED, kind="gate", holder="scheduler-b")
    gate.release.set()
    first.join(20)
    assert first_result["value"].outcome == "ok" and second.outcome == "duplicate"
    # ...and again after it finished (the lease is gone, the run key is not).
    assert runner.execute(second_engine, "gate", SCHEDULED, kind="gate", holder="scheduler-b").outcome == "duplicate"
    assert gate.calls == 1
    [run] = runs(engine, "gate")
    assert (run["outcome"], run["holder"], run["run_key"], run["counts"]) == ("ok", "scheduler-a", "2026-11-20T03:00:00Z",
                                                                            {"done": 1})


def test_two_executors_of_separate_schedulers_run_a_fired_job_once(engine, second_engine, isolated_registry):
    gate = Gate()
    isolated_registry.register("gate", gate)
    job = job_for(JobSpec("gate", "gate", every(60, "gate")))
    job._jobstore_alias = "default"
    a, b = LeasedExecutor(engine, "scheduler-a", 60), LeasedExecutor(second_engine, "scheduler-b", 60)
    first, first_events = in_thread(a._run, job, [SCHEDULED])
    assert gate.entered.wait(20)
    second_events = b._run(job, [SCHEDULED])
    gate.release.set()
    first.join(20)
    assert first_events["value"][0].retval.outcome == "ok"
    assert second_events[0].retval.outcome == "duplicate"
    assert gate.calls == 1 and len(runs(engine, "gate")) == 1


def test_an_overrunning_job_is_not_started_again(engine, second_engine, isolated_registry):
    gate = Gate()
    isolated_registry.register("gate", gate)
    later = SCHEDULED + timedelta(minutes=1)
    first, first_result = in_thread(runner.execute, engine, "gate", SCHEDULED, kind="gate", holder="scheduler-a")
    assert gate.entered.wait(20)
    overlapping = runner.execute(second_engine, "gate", later, kind="gate", holder="scheduler-b")
    assert overlapping.outcome == "skipped" and gate.calls == 1
    gate.release.set()
    first.join(20)
    # The next scheduled time after the overrun runs normally.
    assert runner.execute(second_engine, "gate", later + timedelta(minutes=1), kind="gate",
                          holder="scheduler-b").outcome == "ok"
    outcomes = [(r["run_key"], r["outcome"]) for r in runs(engine, "gate")]
    assert outcomes == [("2026-11-20T03:00:00Z", "ok"), ("2026-11-20T03:01:00Z", "skipped"),
                        ("2026-11-20T03:02:00Z", "ok")]
    skipped = runs(engine, "gate")[1]
    assert "still in progress" in skipped["error"] and skipped["finished_at"] is not None


def test_a_crashed_holders_lease_expires_and_its_run_is_marked_failed(engine, isolated_registry):
    isolated_registry.register("work", lambda engine, **params: {"n": 1})
    past = utcnow() - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(insert(job_runs).values(job_id="work", kind="work", run_key="crashed", holder="dead:1:x",
                                             started_at=past, outcome="running"))
        conn.execute(insert(job_leases).values(job_id="work", run_key="crashed", holder="dead:1:x",
                                               acquired_at=past, expires_at=past + timedelta(minutes=5)))
    assert runner.execute(engine, "work", SCHEDULED, kind="work", holder="alive").outcome == "ok"
    crashed, fresh = runs(engine, "work")
    assert crashed["outcome"] == "failed" and crashed["error"] == STALE_RUN_ERROR
    assert fresh["outcome"] == "ok"
    with engine.connect() as conn:
        assert conn.execute(select(job_leases)).all() == []  # released at the end of the run


def test_a_live_lease_is_renewed_and_only_by_its_holder(engine, isolated_registry):
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(job_leases).values(job_id="work", run_key="k", holder="me", acquired_at=now,
                                               expires_at=now + timedelta(seconds=5)))
    assert renew(engine, job_id="work", holder="me", lease_seconds=600)
    assert not renew(engine, job_id="work", holder="someone-else", lease_seconds=600)
    with engine.connect() as conn:
        expires = conn.execute(select(job_leases.c.expires_at)).scalar_one()
    assert expires > now + timedelta(seconds=500)
    # A valid lease blocks another scheduler: its run is recorded as skipped.
    isolated_registry.register("work", lambda engine, **params: {})
    assert runner.execute(engine, "work", SCHEDULED, kind="work", holder="other").outcome == "skipped"


def test_a_failing_job_is_recorded_with_a_redacted_reason_and_releases_its_lease(engine, isolated_registry):
    def broken(engine, **params):
        raise RuntimeError("could not reach postgresql://likely:hunter2-secret@db/likely with "
                           "Bearer abcdef0123456789 and whsec_c2VjcmV0c2VjcmV0c2VjcmV0")
    isolated_registry.register("broken", broken)
    result = runner.execute(engine, "broken", SCHEDULED, kind="broken")
    assert result.outcome == "failed"
    [run] = runs(engine, "broken")
    assert run["outcome"] == "failed" and run["error"].startswith("RuntimeError: could not reach")
    for secret in ("hunter2-secret", "abcdef0123456789", "c2VjcmV0c2VjcmV0c2VjcmV0"):
        assert secret not in run["error"]
    # The lease is released, so the next scheduled time runs.
    isolated_registry.register("broken", lambda engine, **params: {"ok": 1}, replace=True)
    assert runner.execute(engine, "broken", SCHEDULED + timedelta(days=1), kind="broken").outcome == "ok"


def test_a_kind_this_process_does_not_know_is_left_for_one_that_does(engine, isolated_registry):
    assert runner.execute(engine, "rescore:default:1", SCHEDULED, kind="no_such_kind").outcome == "unregistered"
    assert runs(engine) == []  # not claimed: a scheduler that implements it can still run it


def test_workspace_and_params_reach_the_job_and_counts_are_kept(engine, isolated_registry):
    seen = {}

    def rescore(engine, *, workspace_id, prediction_id):
        seen.update(workspace_id=workspace_id, prediction_id=prediction_id)
        return {"scored": 42}
    isolated_registry.register("rescore", rescore)
    result = runner.execute(engine, "rescore:default:7", SCHEDULED, kind="rescore", workspace_id=1,
                            params={"prediction_id": 7})
    assert seen == {"workspace_id": 1, "prediction_id": 7} and result.counts == {"scored": 42}
    [run] = runs(engine)
    assert run["workspace_id"] == 1 and run["counts"] == {"scored": 42} and run["scheduled_at"] == SCHEDULED
