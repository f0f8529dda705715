"""Helpers for the job tests: settings, predictions rows, polling, run-log reads."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Engine, insert, select

from plugin import settings as settings_module
from plugin.store.tables import job_runs, predictions


def job_settings(database_url: str, **overrides) -> dict:
    return settings_module.validate({"database_url": database_url, **overrides})


def add_prediction(engine: Engine, workspace_id: int = 1, name: str = "buyers", status: str = "active",
                   schedule: str = "daily", retrain_days: int = 15,
                   created_at: datetime = datetime(2026, 1, 10, 14, 0, tzinfo=timezone.utc)) -> int:
    with engine.begin() as conn:
        return conn.execute(insert(predictions).values(
            workspace_id=workspace_id, name=name, goal_event="purchase", window_days=14, categories={},
            schedule=schedule, retrain_days=retrain_days, status=status, created_at=created_at,
            updated_at=created_at).returning(predictions.c.id)).scalar_one()


def runs(engine: Engine, job_id: str | None = None) -> list[dict]:
    query = select(job_runs).order_by(job_runs.c.id)
    if job_id:
        query = query.where(job_runs.c.job_id == job_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; a bound on waiting, never an assertion on time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
