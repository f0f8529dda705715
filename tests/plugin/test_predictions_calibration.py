"""Calibration: held-out fitting makes score/100 a probability."""
from __future__ import annotations

import numpy as np
import pytest

from plugin.predictions import backtest, calibration, history, models, scoring
from tests.plugin.predictions_fixtures import AS_OF, DAY


def miscalibrated(n, rng):
    """Outcomes from a true probability, and a model margin that is overconfident and shifted."""
    truth = rng.uniform(0.01, 0.6, size=n)
    labels = (rng.random(n) < truth).astype(float)
    margin = 2.5 * np.log(truth / (1 - truth)) + 1.0
    return truth, labels, margin


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_recovers_probabilities_from_a_distorted_margin(method):
    rng = np.random.default_rng(5)
    _, labels, margin = miscalibrated(60_000, rng)
    fitted = calibration.fit(margin, labels, method=method)
    truth, test_labels, test_margin = miscalibrated(60_000, rng)
    predicted = calibration.apply(fitted, test_margin)
    assert abs(predicted.mean() - test_labels.mean()) < 0.01
    for low in np.arange(0, 0.6, 0.1):  # every score range: predicted ≈ observed
        band = (predicted >= low) & (predicted < low + 0.1)
        if band.sum() > 500:
            assert abs(predicted[band].mean() - test_labels[band].mean()) < 0.03
    assert np.all(np.diff(calibration.apply(fitted, np.linspace(-10, 10, 200))) >= 0)  # monotone


def test_isotonic_is_chosen_only_with_enough_converters():
    rng = np.random.default_rng(6)
    _, labels, margin = miscalibrated(1_000, rng)
    assert calibration.fit(margin, labels)["method"] == "platt"
    _, labels, margin = miscalibrated(20_000, rng)
    assert calibration.fit(margin, labels)["method"] == "isotonic"


def test_scores_are_calibrated_per_decile_on_generated_data(trained):
    """Mean predicted probability vs observed conversion per score decile.

    The run as of AS_OF scored every eligible user; the model never saw what they did in the
    14 days after (it learnt from the 14 days before), and the demo data records it.
    """
    prediction = trained.prediction()
    with trained.engine.connect() as conn:
        run = scoring.latest_run(conn, prediction.id)
        user_ids, scores = history.read_all(conn, run.id)
        converted = np.isin(user_ids, backtest.converters(conn, prediction, AS_OF, AS_OF + 14 * DAY))
    probability = scores / 100
    assert len(probability) > 1500
    assert abs(probability.mean() - converted.mean()) < 0.03
    for decile in np.array_split(np.argsort(probability, kind="stable"), 10):
        assert abs(probability[decile].mean() - converted[decile].mean()) < 0.08


def test_held_out_test_set_is_calibrated_overall(trained):
    with trained.engine.connect() as conn:
        metrics = models.current(conn, trained.prediction()).metrics
    assert abs(metrics["mean_predicted"] - metrics["base_rate"]) < 0.04
