"""How good a model is, measured on users it never saw: the figures stored in `prediction_models.metrics`.

Prediction Quality comes with its 95 % interval (DeLong), its band is chosen from the interval's
lower end, and it is flagged low-confidence with fewer than LOW_CONFIDENCE_CONVERTERS test
converters.

Prediction Quality is lift quality: the accuracy ratio of the cumulative gains curve, i.e. the
area between the model's gains curve and the random diagonal over the area between the perfect
curve and the diagonal, × 100 and clipped at 0 (0 = random, 100 = perfect). Users with equal
scores are taken in random order, so ties earn exactly the diagonal between them.
"""
from __future__ import annotations

import numpy as np

BANDS = [(60.0, "Excellent"), (40.0, "Good"), (20.0, "Fair"), (0.0, "Poor")]
# Fewer test converters than this and the quality figure is flagged as low confidence: its
# interval is wide, and a handful of users decide it (9 converters once read "Excellent 65.8").
LOW_CONFIDENCE_CONVERTERS = 50
Z_95 = 1.959964
THRESHOLDS = list(range(0, 101))


def quality_band(quality: float) -> str:
    """Excellent 60–100, Good 40–60, Fair 20–40, Poor 0–20 (a boundary belongs to the band above)."""
    for low, name in BANDS:
        if quality >= low:
            return name
    return "Poor"


def auc(labels: np.ndarray, probability: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None when only one class is present."""
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(probability, return_inverse=True, return_counts=True)
    # Average rank of each distinct value (1-based), so tied users share their ranks.
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def _midranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def auc_interval(labels: np.ndarray, probability: np.ndarray, z: float = Z_95) -> tuple[float, float] | None:
    """DeLong's confidence interval for the AUC (95 % by default); None with fewer than two users
    of either class."""
    labels = np.asarray(labels, dtype=bool)
    probability = np.asarray(probability, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives < 2 or negatives < 2:
        return None
    everyone = _midranks(probability)
    # Per positive: the share of negatives it outranks (ties half); per negative: the share of
    # positives that outrank it. Their variances give the AUC's (DeLong, DeLong & Clarke-Pearson 1988).
    above = (everyone[labels] - _midranks(probability[labels])) / negatives
    below = 1.0 - (everyone[~labels] - _midranks(probability[~labels])) / positives
    value = float(above.mean())
    spread = z * float(np.sqrt(above.var(ddof=1) / positives + below.var(ddof=1) / negatives))
    return max(0.0, value - spread), min(1.0, value + spread)


def quality_interval(labels: np.ndarray, probability: np.ndarray) -> tuple[float, float] | None:
    """95 % interval for Prediction Quality. Lift quality is the accuracy ratio of the gains
    curve, which equals 2·AUC − 1, so DeLong's AUC interval maps onto it exactly."""
    interval = auc_interval(labels, probability)
    if interval is None:
        return None
    return tuple(float(np.clip((2 * v - 1) * 100.0, 0.0, 100.0)) for v in interval)


def log_loss(labels: np.ndarray, probability: np.ndarray) -> float:
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(labels: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean((np.asarray(probability, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2))


def gains_curve(labels: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of users (x) and of converters (y), best scores first, one point per distinct score."""
    labels = np.asarray(labels, dtype=np.float64)
    order = np.argsort(-np.asarray(probability, dtype=np.float64), kind="stable")
    ranked_p = np.asarray(probability)[order]
    ranked_y = labels[order]
    group_end = np.flatnonzero(np.append(ranked_p[1:] != ranked_p[:-1], True))
    users = (group_end + 1).astype(np.float64)
    converted = np.cumsum(ranked_y)[group_end]
    total = max(labels.sum(), 1e-12)
    return np.concatenate([[0.0], users / len(labels)]), np.concatenate([[0.0], converted / total])


def lift_quality(labels: np.ndarray, probability: np.ndarray) -> float | None:
    """Prediction Quality (0–100); None when only one class is present."""
    labels = np.asarray(labels, dtype=np.float64)
    rate = labels.mean() if len(labels) else 0.0
    if rate in (0.0, 1.0):
        return None
    x, y = gains_curve(labels, probability)
    model_area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    perfect_area = 1.0 - rate / 2.0
    ratio = (model_area - 0.5) / (perfect_area - 0.5)
    return float(np.clip(ratio * 100.0, 0.0, 100.0))


def calibration_table(labels: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[dict]:
    """Users, mean predicted and observed rate per score decile range [0, 10), …, [90, 100]."""
    probability = np.asarray(probability, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    slot = np.clip((probability * bins).astype(np.int64), 0, bins - 1)
    users = np.bincount(slot, minlength=bins)
    predicted = np.bincount(slot, weights=probability, minlength=bins)
    observed = np.bincount(slot, weights=labels, minlength=bins)
    table = []
    for i in range(bins):
        n = int(users[i])
        table.append({"score_from": i * 100 // bins, "score_to": (i + 1) * 100 // bins, "users": n,
                      "mean_predicted": float(predicted[i] / n) if n else None,
                      "observed_rate": float(observed[i] / n) if n else None})
    return table


def calibration_error(labels: np.ndarray, probability: np.ndarray, bins: int = 10) -> dict:
    """How far predictions are from outcomes, in percentage points: the mean gap (mean predicted −
    observed rate: what makes "expected conversions" honest) and the expected calibration error
    (the users-weighted mean |predicted − observed| over ten equal-size bins of predicted probability)."""
    probability = np.asarray(probability, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if not len(labels):
        return {"mean_gap_pp": None, "expected_calibration_error_pp": None}
    order = np.argsort(probability, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, len(order))) if len(g)]
    ece = sum(len(g) * abs(probability[g].mean() - labels[g].mean()) for g in groups) / len(labels)
    return {"mean_gap_pp": round(float(100 * (probability.mean() - labels.mean())), 3),
            "expected_calibration_error_pp": round(float(100 * ece), 3)}


def threshold_curve(labels: np.ndarray, scores: np.ndarray) -> dict:
    """Per whole-number threshold t (0–100): test users with score >= t, how many converted,
    and the sum of their probabilities. The audiences preview reads this (a fixed contract)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    # score >= t exactly when floor(score) >= t, for whole t.
    slot = np.clip(np.floor(scores).astype(np.int64), 0, 100)
    def at_or_above(weights):
        per_slot = np.bincount(slot, weights=weights, minlength=101)
        return np.cumsum(per_slot[::-1])[::-1]
    users = at_or_above(None)
    positives = at_or_above(labels)
    expected = at_or_above(scores / 100.0)
    return {"thresholds": THRESHOLDS,
            "users_at_or_above": [int(round(v)) for v in users],
            "positives_at_or_above": [int(round(v)) for v in positives],
            "expected_at_or_above": [round(float(v), 4) for v in expected]}


def evaluate(labels: np.ndarray, scores: np.ndarray) -> dict:
    """Every test-set figure for calibrated scores (0–100)."""
    probability = np.asarray(scores, dtype=np.float64) / 100.0
    quality = lift_quality(labels, probability)
    interval = quality_interval(labels, probability) if quality is not None else None
    converters = int(np.sum(labels))
    return {
        "test_users": int(len(labels)),
        "test_positives": converters,
        "auc": auc(labels, probability),
        "auc_interval": list(auc_interval(labels, probability) or []) or None,
        "log_loss": log_loss(labels, probability),
        "brier": brier(labels, probability),
        "prediction_quality": quality,
        "prediction_quality_interval": list(interval) if interval else None,
        # The band is the interval's lower end: a label the data can stand behind.
        "quality_band": quality_band(interval[0] if interval else quality) if quality is not None else None,
        "quality_low_confidence": quality is not None and converters < LOW_CONFIDENCE_CONVERTERS,
        "base_rate": float(np.mean(labels)) if len(labels) else None,
        "mean_predicted": float(np.mean(probability)) if len(labels) else None,
        "calibration": calibration_table(labels, probability),
        **calibration_error(labels, probability),
        "threshold_curve": threshold_curve(labels, scores),
    }
