"""The training queue: a new prediction is trained now, not at its first retraining date.

Creating an active or preview prediction queues its first training (`queue_first`); the
scheduler's `train_queued` job (every minute) claims queued trainings, trains, and scores with
the new model at once, so the prediction goes `building → ready` — or `refused` with the counts
it found when there is not enough data. A claim lapses after `CLAIM_SECONDS`, so a trainer that
crashed mid-way leaves the training to the next sweep instead of `building` forever.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update

from plugin.store.tables import prediction_trainings
from plugin.store.types import utcnow

log = logging.getLogger(__name__)

QUEUED, BUILDING, READY, REFUSED, FAILED = "queued", "building", "ready", "refused", "failed"
STATES = (QUEUED, BUILDING, READY, REFUSED, FAILED)
CLAIM_SECONDS = 3600
SWEEP_LIMIT = 5
TRAINED_AT_ONCE = ("active", "preview")   # demo predictions are trained by `likely demo` itself


def queue_first(conn: Connection, prediction: Any) -> None:
    """Queue a just-created prediction's first training (inside the creating transaction)."""
    if prediction.status in TRAINED_AT_ONCE:
        conn.execute(insert(prediction_trainings).values(
            workspace_id=prediction.workspace_id, prediction_id=prediction.id, state=QUEUED,
            requested_at=utcnow()))


def settle(conn: Connection, prediction_id: int, model_id: int) -> None:
    """A model was saved (by any path): a training still waiting in the queue is answered by it."""
    conn.execute(update(prediction_trainings).where(prediction_trainings.c.prediction_id == prediction_id,
                                                    prediction_trainings.c.state == QUEUED)
                 .values(state=READY, finished_at=utcnow(), model_id=model_id))


def latest(conn: Connection, prediction_id: int) -> dict | None:
    """The prediction's latest training as the API shows it, or None when none was queued."""
    row = conn.execute(select(prediction_trainings).where(prediction_trainings.c.prediction_id == prediction_id)
                       .order_by(prediction_trainings.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    # A queued training is shown as building: to the marketer both mean "the model is coming".
    return {"state": BUILDING if row.state == QUEUED else row.state,
            "requested_at": row.requested_at.isoformat(),
            "started_at": row.started_at.isoformat() if row.started_at else None,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "model_id": row.model_id, "details": row.details}


def _claimable(now_ts: int):
    return or_(prediction_trainings.c.state == QUEUED,
               and_(prediction_trainings.c.state == BUILDING, prediction_trainings.c.claim_expires < now_ts))


def claim(engine: Engine, now_ts: int, limit: int = SWEEP_LIMIT) -> list[tuple[int, int, int]]:
    """Claim up to `limit` due trainings: (training id, workspace id, prediction id) of each won.

    Each row is claimed by a conditional UPDATE, so two schedulers never train the same one.
    """
    with engine.connect() as conn:
        due = conn.execute(select(prediction_trainings.c.id, prediction_trainings.c.workspace_id,
                                  prediction_trainings.c.prediction_id)
                           .where(_claimable(now_ts)).order_by(prediction_trainings.c.id).limit(limit)).all()
    won = []
    for training_id, workspace_id, prediction_id in due:
        with engine.begin() as conn:
            taken = conn.execute(update(prediction_trainings).where(
                prediction_trainings.c.id == training_id, _claimable(now_ts)).values(
                state=BUILDING, started_at=utcnow(), claim_expires=now_ts + CLAIM_SECONDS)).rowcount
        if taken:
            won.append((training_id, workspace_id, prediction_id))
    return won


def finish(engine: Engine, training_id: int, state: str, model_id: int | None = None,
           details: dict | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(update(prediction_trainings).where(prediction_trainings.c.id == training_id).values(
            state=state, finished_at=utcnow(), claim_expires=None, model_id=model_id, details=details))
