"""Calibration: held-out users turn LightGBM's raw output into a probability that means what it says.

Two methods, both plain numpy and stored as JSON beside the model:
- Platt scaling: p = sigmoid(a * margin + b), fitted by Newton's method. Two parameters, so it is
  safe on small held-out sets.
- Isotonic regression (pool adjacent violators) on LightGBM's probability, interpolated linearly
  between block ends. It fixes any monotone distortion but needs many converters to be smooth,
  so `fit` uses it only when the held-out set has `ISOTONIC_MIN_CLASS` of each class.
"""
from __future__ import annotations

import numpy as np

ISOTONIC_MIN_CLASS = 1_000
MAX_GROUPS = 2_000
PRIOR_WEIGHT = 2.0  # pseudo-users pulling each isotonic block toward the base rate: no hard 0 or 1


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def fit(margin: np.ndarray, labels: np.ndarray, method: str | None = None) -> dict:
    """Fit a calibration on held-out users' raw margins (log-odds) and 0/1 outcomes."""
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels.sum()
    if method is None:
        enough = min(positives, len(labels) - positives) >= ISOTONIC_MIN_CLASS
        method = "isotonic" if enough else "platt"
    if method == "platt":
        return fit_platt(margin, labels)
    return fit_isotonic(sigmoid(np.asarray(margin, dtype=np.float64)), labels)


def apply(calibration: dict, margin: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for raw margins."""
    margin = np.asarray(margin, dtype=np.float64)
    if calibration["method"] == "platt":
        return sigmoid(calibration["a"] * margin + calibration["b"])
    return np.interp(sigmoid(margin), calibration["x"], calibration["y"])


def fit_platt(margin: np.ndarray, labels: np.ndarray, iterations: int = 100) -> dict:
    margin = np.asarray(margin, dtype=np.float64)
    positives = labels.sum()
    negatives = len(labels) - positives
    # Platt's smoothed targets keep a separable held-out set from driving a to infinity.
    target = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = sigmoid(a * margin + b)
        weight = np.maximum(p * (1 - p), 1e-12)
        residual = p - target
        gradient = np.array([np.dot(residual, margin), residual.sum()])
        hessian = np.array([[np.dot(weight, margin * margin), np.dot(weight, margin)],
                            [np.dot(weight, margin), weight.sum()]]) + np.eye(2) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return {"method": "platt", "a": float(a), "b": float(b)}


def fit_isotonic(probability: np.ndarray, labels: np.ndarray) -> dict:
    order = np.argsort(probability, kind="stable")
    x = probability[order]
    y = labels[order]
    prior = y.mean() if len(y) else 0.0
    # Pool adjacent violators over runs of equal x (ties must share one value).
    unique_x, starts = np.unique(x, return_index=True)
    if len(starts) > MAX_GROUPS:
        # Pre-pool into equal-count groups (ties stay together): a few hundred thousand distinct
        # scores would make a huge, no better, calibration table.
        wanted = np.searchsorted(starts, np.linspace(0, len(y), MAX_GROUPS, endpoint=False))
        starts = np.unique(starts[np.minimum(wanted, len(starts) - 1)])
        unique_x = x[starts]
    sums = np.add.reduceat(y, starts) if len(y) else np.array([])
    counts = np.diff(np.append(starts, len(y))).astype(np.float64)
    lows, highs, block_sum, block_count = [], [], [], []
    group_high = x[np.append(starts[1:], len(y)) - 1] if len(y) else np.array([])
    for ux, hx, s, c in zip(unique_x, group_high, sums, counts):
        lows.append(ux), highs.append(hx), block_sum.append(s), block_count.append(c)
        while len(block_sum) > 1 and block_sum[-2] / block_count[-2] >= block_sum[-1] / block_count[-1]:
            s2, c2, h2 = block_sum.pop(), block_count.pop(), highs.pop()
            lows.pop()
            block_sum[-1] += s2
            block_count[-1] += c2
            highs[-1] = h2
    values = [(s + PRIOR_WEIGHT * prior) / (c + PRIOR_WEIGHT) for s, c in zip(block_sum, block_count)]
    knots_x, knots_y = [], []
    for low, high, value in zip(lows, highs, values):
        knots_x.extend([low, high] if high > low else [low])
        knots_y.extend([value, value] if high > low else [value])
    if not knots_x:
        knots_x, knots_y = [0.0, 1.0], [prior, prior]
    return {"method": "isotonic", "x": [float(v) for v in knots_x], "y": [float(v) for v in knots_y]}
