"""Training: versioned models any process can load, quality metrics, and refusals."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from plugin.errors import Conflict, Unprocessable
from plugin.predictions import definitions, models, training
from plugin.store import make_engine
from plugin.store.tables import prediction_models
from tests.plugin.predictions_fixtures import AS_OF, DAY, END, event, new_prediction, write


def test_a_trained_model_is_stored_versioned_and_current(trained):
    prediction = trained.prediction()
    with trained.engine.connect() as conn:
        first = models.current(conn, prediction)
    assert first.version == 1 and prediction.current_model_id == first.id and prediction.last_trained_at
    new_id = training.train(trained.engine, prediction, AS_OF)
    # Another process (a fresh engine, an empty cache) loads and uses the same current model.
    other = make_engine(trained.url)
    with other.connect() as conn:
        prediction = definitions.get(conn, 1, prediction.id)
        assert prediction.current_model_id == new_id
        loaded = models.load(conn, new_id)
        versions = conn.execute(select(prediction_models.c.version).where(
            prediction_models.c.prediction_id == prediction.id).order_by(prediction_models.c.version)).scalars().all()
    other.dispose()
    assert versions == [1, 2] and loaded.version == 2
    matrix = np.zeros((3, len(loaded.columns())), dtype=np.float32)
    assert loaded.scores(matrix).shape == (3,)
    # Deterministic: the same data and as-of give the same model.
    assert loaded.booster.model_to_string() == first.booster.model_to_string()


def test_metrics_hold_quality_figures_and_the_threshold_curve_contract(trained):
    with trained.engine.connect() as conn:
        model = models.current(conn, trained.prediction())
    m = model.metrics
    assert 0.5 < m["auc"] <= 1 and m["log_loss"] > 0 and 0 < m["brier"] < 0.25
    assert 20 <= m["prediction_quality"] <= 90 and m["quality_band"] in ("Fair", "Good", "Excellent")
    assert len(m["calibration"]) == 10
    assert m["feature_importance"] and all(not f["feature"].startswith(("events:", "attribute:"))
                                           for f in m["feature_importance"])
    curve = m["threshold_curve"]
    assert set(curve) == {"thresholds", "users_at_or_above", "positives_at_or_above", "expected_at_or_above"}
    assert curve["thresholds"] == list(range(101))
    assert curve["users_at_or_above"][0] == m["test_users"] == model.counts["test_users"]
    assert curve["positives_at_or_above"][0] == m["test_positives"]
    assert all(a >= b for a, b in zip(curve["users_at_or_above"], curve["users_at_or_above"][1:]))
    assert m["test_positives"] == pytest.approx(curve["expected_at_or_above"][0], rel=0.35)


def test_users_split_by_hash_the_same_way_every_time():
    ids = np.arange(1, 100_001, dtype=np.int64)
    split = training.split_of(ids)
    assert np.array_equal(split, training.split_of(ids.copy()))
    shares = np.bincount(split, minlength=4) / len(ids)
    assert shares == pytest.approx([0.60, 0.10, 0.15, 0.15], abs=0.01)
    # A user's set does not depend on who else is there.
    assert np.array_equal(training.split_of(ids[::7]), split[::7])


def test_too_few_converters_is_refused_with_the_counts(engine):
    write(engine, [event(f"u{i}", "view", END - 20 * DAY) for i in range(30)]
          + [event(f"u{i}", "purchase", END - 3 * DAY) for i in range(4)])
    prediction = new_prediction(engine)
    with pytest.raises(Unprocessable) as refused:
        training.train(engine, prediction, END)
    error = refused.value
    assert error.status == 422 and error.code == "not_enough_data"
    assert error.details["positives"] == 4 and error.details["negatives"] == 26
    assert error.details["min_positives"] == 100 and error.details["eligible_users"] == 30
    assert "4 users performed purchase" in error.message
    with engine.connect() as conn:
        assert definitions.get(conn, 1, prediction.id).current_model_id is None


def test_archived_predictions_are_not_trained(engine):
    prediction = new_prediction(engine)
    with engine.begin() as conn:
        prediction = definitions.archive(conn, 1, prediction.id)
    with pytest.raises(Conflict) as refused:
        training.train(engine, prediction, END)
    assert refused.value.code == "prediction_archived"


def test_training_stacks_earlier_windows_but_calibrates_and_tests_on_the_latest(engine):
    as_of = 1_000_000_000
    rng = np.random.default_rng(4)
    rows = []
    for i in range(600):
        for day in rng.choice(120, size=int(rng.integers(1, 12)), replace=False):
            rows.append(event(f"u{i}", "purchase" if rng.random() < 0.4 else "view", as_of - int(day) * DAY - 60))
    write(engine, rows)
    prediction = new_prediction(engine, window_days=14)
    one = training.training_set(engine, prediction, as_of, snapshots=1)
    three = training.training_set(engine, prediction, as_of, snapshots=3)
    latest = three.snapshot == 0
    np.testing.assert_array_equal(three.matrix[latest], one.matrix)       # the latest window is unchanged
    np.testing.assert_array_equal(three.labels[latest], one.labels)
    older = training.split_of(three.user_ids[~latest])
    assert len(older) and set(older.tolist()) <= {training.TRAIN, training.EARLY_STOP}  # never calibration or test
    assert set(three.snapshot.tolist()) == {0, 1, 2}
