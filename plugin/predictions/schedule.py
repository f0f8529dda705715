"""What a prediction is due for: the scheduler (its own process) asks this, then calls
`training.train`, `scoring.score` and `backtest.run`.

Active predictions rescore on their schedule (daily, weekly, monthly) and retrain every
`retrain_days`. A preview prediction is trained and scored once on real data; a demo one on
the demo data; neither is ever updated. Archived predictions are left alone.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SCORE_EVERY = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=30)}
SLACK = timedelta(minutes=30)  # a job that ran a little late yesterday is still due today


def due(prediction: Any, now: datetime) -> dict[str, bool]:
    """{"train", "score", "backtest"}: which jobs to run for this prediction now."""
    if prediction.status == "archived":
        return {"train": False, "score": False, "backtest": False}
    first_time = prediction.current_model_id is None
    if prediction.status in ("demo", "preview"):
        return {"train": first_time, "score": first_time or prediction.last_scored_at is None, "backtest": True}
    train = first_time or _older_than(prediction.last_trained_at, now, timedelta(days=prediction.retrain_days))
    score = train or _older_than(prediction.last_scored_at, now, SCORE_EVERY[prediction.schedule])
    return {"train": train, "score": score, "backtest": True}


def _older_than(moment: datetime | None, now: datetime, interval: timedelta) -> bool:
    return moment is None or now - moment >= interval - SLACK
