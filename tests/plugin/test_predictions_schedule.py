"""What the scheduler should run for a prediction."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from plugin.predictions.definitions import Prediction
from plugin.predictions.schedule import due

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=timezone.utc)
BASE = Prediction(id=1, workspace_id=1, name="p", goal_event="purchase", goal_condition=None, window_days=14,
                  audience=None, categories={}, schedule="daily", retrain_days=15, status="active",
                  current_model_id=7, created_at=NOW, updated_at=NOW, last_trained_at=NOW - timedelta(days=3),
                  last_scored_at=NOW - timedelta(hours=2), last_backtested_at=None)


@pytest.mark.parametrize("changes, train, score", [
    ({}, False, False),
    ({"last_scored_at": NOW - timedelta(days=1)}, False, True),
    ({"schedule": "weekly", "last_scored_at": NOW - timedelta(days=6)}, False, False),
    ({"schedule": "weekly", "last_scored_at": NOW - timedelta(days=7)}, False, True),
    ({"last_trained_at": NOW - timedelta(days=15)}, True, True),          # a new model is scored at once
    ({"current_model_id": None, "last_trained_at": None}, True, True),
])
def test_active_predictions_follow_their_schedule(changes, train, score):
    assert due(replace(BASE, **changes), NOW) == {"train": train, "score": score, "backtest": True}


def test_demo_and_preview_run_once_and_archived_never():
    for status in ("demo", "preview"):
        assert due(replace(BASE, status=status, last_trained_at=NOW - timedelta(days=99)), NOW)["train"] is False
        assert due(replace(BASE, status=status, current_model_id=None), NOW)["train"] is True
    assert due(replace(BASE, status="archived", current_model_id=None), NOW) == \
        {"train": False, "score": False, "backtest": False}
