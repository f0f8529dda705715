"""Backtests: once a scoring run's window has fully passed, compare its scores with what users did.

For a run as of A with window w, a user converted if a goal event (meeting the goal's condition)
happened in (A, A + w]. The run's per-user scores come from `scoring_run_chunks`, so a
backtest judges the scores as they were given, whatever was trained or scored since.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update

from plugin.errors import Conflict, NotFound
from plugin.predictions import categories, history, quality
from plugin.predictions.columns import fetch_arrays
from plugin.predictions.eligibility import DAY, goal_condition_sql
from plugin.store import transaction
from plugin.store.tables import backtests, event_types, events, predictions, scoring_runs
from plugin.store.types import utcnow


def due_runs(conn: Connection, prediction: Any, now_ts: int) -> list:
    """Complete runs whose window has passed and that have no backtest yet, oldest first."""
    done = select(backtests.c.run_id).where(backtests.c.prediction_id == prediction.id)
    return conn.execute(select(scoring_runs).where(
        scoring_runs.c.prediction_id == prediction.id, scoring_runs.c.status == "complete",
        scoring_runs.c.as_of + scoring_runs.c.window_days * DAY <= now_ts, scoring_runs.c.id.not_in(done))
        .order_by(scoring_runs.c.id)).all()


def run(engine: Engine, prediction: Any, now_ts: int, run_id: int | None = None) -> list[dict]:
    """Backtest one run (by id) or every due run; return the stored results."""
    with engine.connect() as conn:
        if run_id is None:
            runs = due_runs(conn, prediction, now_ts)
        else:
            row = conn.execute(select(scoring_runs).where(scoring_runs.c.id == run_id,
                                                          scoring_runs.c.prediction_id == prediction.id)).first()
            if row is None or row.status != "complete":
                raise NotFound(f"prediction {prediction.id} has no complete scoring run {run_id}",
                               code="run_not_found")
            end = row.as_of + row.window_days * DAY
            if end > now_ts:
                raise Conflict("this run's window has not passed yet", code="window_not_passed",
                               details={"run_id": run_id, "window_ends": end})
            runs = [row]
    results = []
    for row in runs:
        with engine.connect() as conn:
            metrics = evaluate_run(conn, prediction, row)
        with transaction(engine) as conn:
            conn.execute(backtests.delete().where(backtests.c.run_id == row.id))
            backtest_id = conn.execute(insert(backtests).values(
                workspace_id=prediction.workspace_id, prediction_id=prediction.id, run_id=row.id,
                model_id=row.model_id, created_at=utcnow(), metrics=metrics).returning(backtests.c.id)).scalar_one()
            conn.execute(update(predictions).where(predictions.c.id == prediction.id)
                         .values(last_backtested_at=utcnow()))
        results.append({"id": backtest_id, "run_id": row.id, "model_id": row.model_id, "metrics": metrics})
    return results


def evaluate_run(conn: Connection, prediction: Any, row) -> dict:
    user_ids, scores = history.read_all(conn, row.id)
    converted = np.isin(user_ids, converters(conn, prediction, row.as_of, row.as_of + row.window_days * DAY))
    probability = scores / 100.0
    lift = quality.lift_quality(converted, probability)
    bounds = row.categories.get("bounds") or categories.resolve_bounds(categories.DEFAULT_SCHEME)
    names = categories.assign(scores, bounds)
    per_category = []
    for bound in bounds:
        mask = names == bound["name"]
        users = int(mask.sum())
        per_category.append({"category": bound["name"], "users": users,
                             "expected_conversions": round(float(probability[mask].sum()), 2),
                             "actual_conversions": int(converted[mask].sum()),
                             "expected_rate": float(probability[mask].mean()) if users else None,
                             "actual_rate": float(converted[mask].mean()) if users else None})
    return {"as_of": row.as_of, "window_days": row.window_days, "users": int(len(user_ids)),
            "expected_conversions": round(float(probability.sum()), 2), "actual_conversions": int(converted.sum()),
            "auc": quality.auc(converted, probability), "prediction_quality": lift,
            "quality_band": quality.quality_band(lift) if lift is not None else None,
            "categories": per_category, "calibration": quality.calibration_table(converted, probability)}


def converters(conn: Connection, prediction: Any, start_ts: int, end_ts: int) -> np.ndarray:
    """Ids of users with a goal event (meeting the condition) in (start_ts, end_ts]."""
    goal_type = conn.execute(select(event_types.c.id).where(event_types.c.workspace_id == prediction.workspace_id,
                                                            event_types.c.name == prediction.goal_event)).scalar()
    if goal_type is None:
        return np.empty(0, np.int64)
    query = select(events.c.user_id.label("id")).distinct().where(
        events.c.workspace_id == prediction.workspace_id, events.c.event_type_id == goal_type,
        events.c.ts > start_ts, events.c.ts <= end_ts)
    if prediction.goal_condition:
        query = query.where(goal_condition_sql(conn, prediction.goal_condition))
    return fetch_arrays(conn, query)["id"]


def list_for(conn: Connection, prediction_id: int) -> list[dict]:
    rows = conn.execute(select(backtests).where(backtests.c.prediction_id == prediction_id)
                        .order_by(backtests.c.id.desc())).all()
    return [{"id": r.id, "run_id": r.run_id, "model_id": r.model_id, "created_at": r.created_at.isoformat(),
             "metrics": r.metrics} for r in rows]
