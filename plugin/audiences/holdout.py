"""Targeting figures for a score range, read off the model's held-out test set.

`threshold_curve` counts, for each whole score t in 0..100, the test users with a calibrated
score >= t, how many of them converted, and the sum of their probabilities. A range
[low, high) is then a difference of two points of the curve; bounds are rounded to whole
scores because that is the curve's resolution.
"""
from __future__ import annotations

from typing import Any

CURVE_KEYS = ("thresholds", "users_at_or_above", "positives_at_or_above", "expected_at_or_above")


def score_range_leaf(node: dict) -> tuple[dict, bool] | None:
    """The one score-range filter the tree is built on (the root, or one child of a root `all`),
    and whether other filters are layered on it."""
    if node.get("filter") == "event_likelihood_score":
        return node, False
    if "all" in node:
        ranges = [c for c in node["all"] if c.get("filter") == "event_likelihood_score"]
        if len(ranges) == 1:
            return ranges[0], len(node["all"]) > 1
    return None


def _curve(metrics: Any) -> dict[int, tuple[float, float, float]] | None:
    """{threshold: (users, positives, expected)}, or None if the metrics lack a usable curve."""
    curve = metrics.get("threshold_curve") if isinstance(metrics, dict) else None
    if not isinstance(curve, dict) or not all(isinstance(curve.get(k), list) for k in CURVE_KEYS):
        return None
    columns = [curve[k] for k in CURVE_KEYS]
    if len({len(c) for c in columns}) != 1:
        return None
    try:
        return {int(t): (float(u), float(p), float(e)) for t, u, p, e in zip(*columns)}
    except (TypeError, ValueError):
        return None


def _at(curve: dict[int, tuple[float, float, float]], threshold: int) -> tuple[float, float, float]:
    if threshold > max(curve):
        return 0.0, 0.0, 0.0
    # Thresholds are 0..100; tolerate a sparser curve by taking the next one up.
    key = min((t for t in curve if t >= threshold), default=None)
    return curve[key] if key is not None else (0.0, 0.0, 0.0)


def holdout_targeting(metrics: Any, leaf: dict) -> dict[str, Any] | None:
    """Recall, precision and false-positive rate of the leaf's range on the test set."""
    curve = _curve(metrics)
    if not curve:
        return None
    test_users = float(metrics.get("test_users") or curve.get(0, (0, 0, 0))[0])
    test_positives = float(metrics.get("test_positives") or curve.get(0, (0, 0, 0))[1])
    low = leaf.get("gte", leaf.get("gt", 0))
    high = leaf.get("lte", leaf.get("lt"))
    low_t = round(low)
    high_t = None if high is None or high >= 100 else round(high)
    top = _at(curve, low_t)
    cut = _at(curve, high_t) if high_t is not None else (0.0, 0.0, 0.0)
    in_range, positives, expected = (max(a - b, 0.0) for a, b in zip(top, cut))
    expected_all = _at(curve, 0)[2]
    negatives = test_users - test_positives
    return {
        "range": {"gte": low_t, "lt": high_t},
        "test_users": int(test_users),
        "test_positives": int(test_positives),
        "users": int(in_range),
        "positives": int(positives),
        "recall": _ratio(positives, test_positives),
        "expected_recall": _ratio(expected, expected_all),
        "precision": _ratio(positives, in_range),
        "false_positive_rate": _ratio(in_range - positives, negatives),
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
