"""Writing users, events, predictions, models and scores straight into the store.

The predictions engine writes `scores` and `prediction_models.metrics`; until it lands these
helpers follow its contract (statuses, threshold_curve) with plain SQLAlchemy inserts.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete, insert, select, update

from plugin import workspaces
from plugin.predictions.categories import DEFAULT_SCHEME
from plugin.store import transaction
from plugin.store.tables import (
    event_types,
    events,
    prediction_models,
    predictions,
    scores,
    segment_members,
    segment_versions,
    segments,
    users,
)

NOW = 1_790_000_000  # a fixed "now" (2026-09-21), so tests never depend on the clock
_keys = itertools.count(1)


def default_id(engine: Engine) -> int:
    return workspaces.ensure(engine, "default").id


def add_users(engine: Engine, workspace_id: int, people: dict[str, dict]) -> dict[str, int]:
    """{external id: attributes} → {external id: store id}."""
    now = datetime.now(timezone.utc)
    with transaction(engine) as conn:
        if people:
            conn.execute(insert(users), [{"workspace_id": workspace_id, "external_id": ext, "attributes": attrs,
                                          "created_at": now, "updated_at": now} for ext, attrs in people.items()])
        rows = conn.execute(select(users.c.external_id, users.c.id).where(
            users.c.workspace_id == workspace_id, users.c.external_id.in_(list(people))))
        return dict(rows.all())


def add_events(engine: Engine, workspace_id: int, rows: list[tuple[int, str, int]]) -> None:
    """(store user id, event name, epoch seconds) rows."""
    with transaction(engine) as conn:
        names = sorted({name for _, name, _ in rows})
        types = {}
        for name in names:
            found = conn.execute(select(event_types.c.id).where(
                event_types.c.workspace_id == workspace_id, event_types.c.name == name)).scalar()
            if found is None:
                found = conn.execute(insert(event_types).values(workspace_id=workspace_id, name=name)
                                     .returning(event_types.c.id)).scalar()
            types[name] = found
        if rows:
            conn.execute(insert(events), [{"workspace_id": workspace_id, "user_id": uid,
                                           "event_type_id": types[name], "ts": ts,
                                           "event_key": next(_keys)} for uid, name, ts in rows])


def curve(test_users: int = 1000, test_positives: int = 100) -> dict:
    """A simple threshold curve: users spread evenly over scores, positives concentrated on top."""
    thresholds = list(range(101))
    users_at = [round(test_users * (100 - t) / 100) for t in thresholds]
    positives_at = [round(test_positives * ((100 - t) / 100) ** 0.5) for t in thresholds]
    expected_at = [round(test_positives * ((100 - t) / 100) ** 0.6, 3) for t in thresholds]
    return {"test_users": test_users, "test_positives": test_positives,
            "threshold_curve": {"thresholds": thresholds, "users_at_or_above": users_at,
                                "positives_at_or_above": positives_at, "expected_at_or_above": expected_at}}


def add_prediction(engine: Engine, workspace_id: int, name: str = "purchase-14d", status: str = "active",
                   goal_event: str = "purchase", window_days: int = 14, metrics: dict | None = None,
                   with_model: bool = True) -> tuple[int, int | None]:
    now = datetime.now(timezone.utc)
    with transaction(engine) as conn:
        pid = conn.execute(insert(predictions).values(
            workspace_id=workspace_id, name=name, goal_event=goal_event, window_days=window_days,
            categories=DEFAULT_SCHEME, schedule="daily", retrain_days=15, status=status,
            created_at=now, updated_at=now).returning(predictions.c.id)).scalar()
        if not with_model:
            return pid, None
        model_id = conn.execute(insert(prediction_models).values(
            workspace_id=workspace_id, prediction_id=pid, version=1, created_at=now,
            cutoff_at=now - timedelta(days=window_days), model_text="", calibration={}, features={},
            params={}, counts={}, metrics=metrics if metrics is not None else curve())
            .returning(prediction_models.c.id)).scalar()
        conn.execute(update(predictions).where(predictions.c.id == pid).values(current_model_id=model_id))
        return pid, model_id


def category_of(score: float) -> str:
    return "Low" if score < 50 else "Medium" if score < 75 else "High"


def set_scores(engine: Engine, workspace_id: int, prediction_id: int, by_user: dict[int, float],
               categories: dict[int, str] | None = None) -> None:
    """Replace the prediction's scores as a scoring run does (and bump last_scored_at)."""
    with transaction(engine) as conn:
        model_id = conn.execute(select(predictions.c.current_model_id)
                                .where(predictions.c.id == prediction_id)).scalar() or 0
        conn.execute(delete(scores).where(scores.c.prediction_id == prediction_id))
        if by_user:
            conn.execute(insert(scores), [
                {"workspace_id": workspace_id, "prediction_id": prediction_id, "user_id": uid, "score": s,
                 "category": (categories or {}).get(uid, category_of(s)), "model_id": model_id,
                 "scored_at": NOW} for uid, s in by_user.items()])
        conn.execute(update(predictions).where(predictions.c.id == prediction_id)
                     .values(last_scored_at=datetime.now(timezone.utc)))


def set_status(engine: Engine, prediction_id: int, status: str) -> None:
    with transaction(engine) as conn:
        conn.execute(update(predictions).where(predictions.c.id == prediction_id).values(status=status))


def clear(engine: Engine) -> None:
    """Empty what these helpers write (between hypothesis examples)."""
    with transaction(engine) as conn:
        for table in (segment_members, segment_versions, segments, scores, prediction_models, predictions,
                      events, event_types, users):
            conn.execute(delete(table))
