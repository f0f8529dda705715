"""Model quality figures: AUC, lift quality (Prediction Quality) and its bands, the threshold curve."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from plugin.predictions import quality


def brute_force_auc(labels, scores):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_counts_ties_as_half():
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # coarse: many ties
    assert quality.auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores))


def test_lift_quality_is_100_for_perfect_0_for_random_and_clipped_for_inverted():
    rng = np.random.default_rng(2)
    labels = rng.random(20_000) < 0.1
    assert quality.lift_quality(labels, labels.astype(float)) == pytest.approx(100.0)
    assert abs(quality.lift_quality(labels, rng.random(20_000))) < 3.0
    assert quality.lift_quality(labels, 1.0 - labels) == 0.0
    assert quality.lift_quality(labels, np.full(20_000, 0.3)) == pytest.approx(0.0)  # all tied = random


def test_lift_quality_is_the_accuracy_ratio_of_the_gains_curve():
    # For the cumulative gains curve, the accuracy ratio equals 2 AUC - 1 (with ties on both).
    rng = np.random.default_rng(3)
    labels = rng.random(5_000) < 0.2
    scores = np.round(rng.normal(size=5_000) + labels, 2)
    assert quality.lift_quality(labels, scores) == pytest.approx((2 * quality.auc(labels, scores) - 1) * 100)


@pytest.mark.parametrize("value, band", [(100, "Excellent"), (60, "Excellent"), (59.99, "Good"), (40, "Good"),
                                         (39.9, "Fair"), (20, "Fair"), (19.9, "Poor"), (0, "Poor")])
def test_quality_bands(value, band):
    assert quality.quality_band(value) == band


def test_threshold_curve_contract():
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([80.0, 75.5, 50.0, 49.99, 0.0])
    curve = quality.threshold_curve(labels, scores)
    assert curve["thresholds"] == list(range(101))
    assert len(curve["users_at_or_above"]) == len(curve["positives_at_or_above"]) == \
        len(curve["expected_at_or_above"]) == 101
    assert curve["users_at_or_above"][0] == 5
    assert curve["users_at_or_above"][50] == 3       # 80, 75.5 and exactly 50
    assert curve["users_at_or_above"][51] == 2
    assert curve["positives_at_or_above"][50] == 2 and curve["positives_at_or_above"][76] == 1
    assert curve["expected_at_or_above"][50] == pytest.approx(0.8 + 0.755 + 0.5)
    assert curve["users_at_or_above"][100] == 0


def test_calibration_table_has_ten_score_bins():
    table = quality.calibration_table(np.array([0, 1, 1]), np.array([0.05, 0.95, 1.0]))
    assert [row["score_from"] for row in table] == list(range(0, 100, 10))
    assert table[0]["users"] == 1 and table[9]["users"] == 2 and table[9]["observed_rate"] == 1.0
    assert table[5]["mean_predicted"] is None


def test_auc_interval_covers_the_truth_about_95_percent_of_the_time():
    # Scores N(1, 1) for converters and N(0, 1) for the rest: the true AUC is Φ(1/√2) = 0.7602.
    truth, covered = 0.760250, 0
    rng = np.random.default_rng(11)
    for _ in range(400):
        labels = rng.random(400) < 0.15
        low, high = quality.auc_interval(labels, rng.normal(size=400) + labels)
        covered += low <= truth <= high
    assert 0.92 <= covered / 400 <= 0.98


def test_quality_interval_is_wide_and_flagged_with_few_test_converters_and_the_band_comes_from_its_low_end():
    rng = np.random.default_rng(5)
    labels = np.zeros(2_000, dtype=bool)
    labels[:9] = True                                      # 9 test converters, as in the issue
    scores = np.where(labels, rng.uniform(40, 90, 2_000), rng.uniform(0, 60, 2_000))
    few = quality.evaluate(labels, scores)
    low, high = few["prediction_quality_interval"]
    assert low < few["prediction_quality"] < high and high - low > 20
    assert few["quality_low_confidence"] is True
    assert few["quality_band"] == quality.quality_band(low) != quality.quality_band(few["prediction_quality"])

    many = np.zeros(20_000, dtype=bool)
    many[:2_000] = True
    scores = np.where(many, rng.uniform(40, 90, 20_000), rng.uniform(0, 60, 20_000))
    plenty = quality.evaluate(many, scores)
    low, high = plenty["prediction_quality_interval"]
    assert high - low < 5 and plenty["quality_low_confidence"] is False
    assert plenty["quality_band"] == quality.quality_band(low)


def test_calibration_error_measures_the_gap_between_predicted_and_observed():
    rng = np.random.default_rng(8)
    probability = rng.uniform(0, 0.4, 50_000)
    labels = rng.random(50_000) < probability
    honest = quality.evaluate(labels, probability * 100)
    assert abs(honest["mean_gap_pp"]) < 0.5 and honest["expected_calibration_error_pp"] < 1.0
    inflated = quality.evaluate(labels, np.minimum(probability + 0.05, 1) * 100)   # 5 points too high
    assert inflated["mean_gap_pp"] == pytest.approx(5.0, abs=0.5)
    assert inflated["expected_calibration_error_pp"] == pytest.approx(5.0, abs=0.6)
