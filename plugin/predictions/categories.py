"""Likelihood categories: a prediction's scheme turns a 0–100 score into a named band.

A scheme (stored in `predictions.categories`) lists bins from the lowest band to the highest:

- fixed cut points: ``{"type": "fixed", "bins": [{"name": "Low", "min": 0}, {"name": "Medium", "min": 50},
  {"name": "High", "min": 75}]}`` — a score is in the last bin whose ``min`` is <= the score, so the
  default is Low [0, 50), Medium [50, 75), High [75, 100]: 50 is Medium, 49.99 is Low, 75 and 100 High.
- quantiles: ``{"type": "quantile", "bins": [{"name": "Low", "share": 0.5}, {"name": "Medium", "share": 0.3},
  {"name": "High", "share": 0.2}]}`` — shares of the scored users (summing to 1). Each scoring run
  resolves them to cut points on its own score distribution; users with equal scores are never
  split, so a cut goes where the share above it is closest to the target.

Either way a run ends up with *bounds* — ``[{"name", "min"}, ...]``, ascending, first min 0 — and
`assign` / `category_of` / `case_expression` apply the same half-open rule [min, next min).
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
from sqlalchemy import ColumnElement, case, literal

DEFAULT_SCHEME: dict = {"type": "fixed", "bins": [{"name": "Low", "min": 0}, {"name": "Medium", "min": 50},
                                                  {"name": "High", "min": 75}]}
HUNDREDTHS = 10_001  # scores are kept to 0.01: histogram slots 0.00 … 100.00
MAX_BINS = 10
NAME_LENGTH = 64     # scores.category is String(64)


def validate(scheme: Any) -> dict:
    """A normalised copy of a scheme, or ValueError saying what is wrong."""
    if not isinstance(scheme, dict) or scheme.get("type") not in ("fixed", "quantile"):
        raise ValueError('a category scheme is {"type": "fixed" | "quantile", "bins": [...]}')
    bins = scheme.get("bins")
    if not isinstance(bins, list) or not 1 <= len(bins) <= MAX_BINS:
        raise ValueError(f"a category scheme has 1 to {MAX_BINS} bins")
    names = [b.get("name") if isinstance(b, dict) else None for b in bins]
    if not all(isinstance(n, str) and 0 < len(n.strip()) <= NAME_LENGTH for n in names):
        raise ValueError(f"every bin has a name of 1 to {NAME_LENGTH} characters")
    names = [n.strip() for n in names]
    if len(set(names)) != len(names):
        raise ValueError("bin names must be distinct")
    if scheme["type"] == "fixed":
        mins = [b.get("min") for b in bins]
        if not all(_number(m) and 0 <= m <= 100 for m in mins):
            raise ValueError("every fixed bin has a min score between 0 and 100")
        if mins[0] != 0 or any(b <= a for a, b in zip(mins, mins[1:])):
            raise ValueError("fixed bins start at 0 and their mins strictly increase")
        return {"type": "fixed", "bins": [{"name": n, "min": float(m)} for n, m in zip(names, mins)]}
    shares = [b.get("share") for b in bins]
    if not all(_number(s) and 0 < s <= 1 for s in shares) or not math.isclose(sum(shares), 1, abs_tol=1e-6):
        raise ValueError("quantile bins have shares between 0 and 1 that sum to 1")
    return {"type": "quantile", "bins": [{"name": n, "share": float(s)} for n, s in zip(names, shares)]}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_spec(text: str) -> dict:
    """The CLI's --categories: `default`, a JSON scheme, `fixed:Low=0,Medium=50,High=75`, or
    `quantile:Low=50,Medium=30,High=20` (percent; one may be `rest`). Lowest band first."""
    text = text.strip()
    if text in ("", "default"):
        return DEFAULT_SCHEME
    if text.startswith("{"):
        try:
            return validate(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
    kind, _, body = text.partition(":")
    if kind not in ("fixed", "quantile") or not body:
        raise ValueError("use fixed:NAME=MIN,… or quantile:NAME=PERCENT,… (lowest band first), or JSON")
    pairs = []
    for part in body.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not NAME=VALUE")
        pairs.append((name.strip(), value.strip()))
    try:
        if kind == "fixed":
            return validate({"type": "fixed", "bins": [{"name": n, "min": float(v)} for n, v in pairs]})
        given = sum(float(v) for _, v in pairs if v != "rest")
        return validate({"type": "quantile", "bins": [
            {"name": n, "share": (100 - given if v == "rest" else float(v)) / 100} for n, v in pairs]})
    except ValueError as error:
        raise ValueError(str(error).replace("could not convert string to float", "not a number")) from None


def names(scheme: dict) -> list[str]:
    return [b["name"] for b in scheme["bins"]]


def resolve_bounds(scheme: dict, histogram: np.ndarray | None = None) -> list[dict]:
    """Bounds for a run. Quantile schemes need the run's histogram of scores in hundredths
    (`HUNDREDTHS` slots, see `hundredths_histogram`)."""
    if scheme["type"] == "fixed":
        return [{"name": b["name"], "min": float(b["min"])} for b in scheme["bins"]]
    shares = np.array([b["share"] for b in scheme["bins"]])
    targets = np.cumsum(shares)[:-1]  # share of users below each cut
    counts = np.zeros(HUNDREDTHS) if histogram is None else np.asarray(histogram, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        cuts = [round(float(t) * 100, 2) for t in targets]
    else:
        below = np.concatenate([[0.0], np.cumsum(counts)]) / total  # share strictly below slot v
        # A cut sits at an occupied slot (the lowest score of the band above) or above them all.
        candidates = np.concatenate([np.flatnonzero(counts), [HUNDREDTHS]])
        cuts, floor = [], 0
        for target in targets:
            allowed = candidates[candidates >= floor]
            best = int(allowed[np.argmin(np.abs(below[allowed] - target))])
            cuts.append(best / 100)
            floor = best
    mins = [0.0] + [float(c) for c in cuts]
    return [{"name": b["name"], "min": m} for b, m in zip(scheme["bins"], mins)]


def hundredths_histogram(scores: np.ndarray) -> np.ndarray:
    """Users per 0.01 of score: what `resolve_bounds` needs, summable across chunks."""
    slots = np.clip(np.rint(np.asarray(scores, dtype=np.float64) * 100), 0, HUNDREDTHS - 1).astype(np.int64)
    return np.bincount(slots, minlength=HUNDREDTHS)


def assign(scores: np.ndarray, bounds: Sequence[dict]) -> np.ndarray:
    """Category name per score (an object array), by the half-open rule [min, next min)."""
    mins = np.array([b["min"] for b in bounds], dtype=np.float64)
    labels = np.array([b["name"] for b in bounds], dtype=object)
    index = np.searchsorted(mins, np.asarray(scores, dtype=np.float64), side="right") - 1
    return labels[np.clip(index, 0, len(labels) - 1)]


def category_of(score: float, bounds: Sequence[dict]) -> str:
    return str(assign(np.array([score]), bounds)[0])


def case_expression(score: ColumnElement, bounds: Sequence[dict]) -> ColumnElement:
    """The same rule in SQL, e.g. to recategorise stored scores when a scheme changes."""
    whens = [(score >= b["min"], literal(b["name"])) for b in reversed(bounds[1:])]
    return case(*whens, else_=literal(bounds[0]["name"])) if whens else literal(bounds[0]["name"])


def score_range(bounds: Sequence[dict], name: str) -> tuple[float, float | None]:
    """[low, high) of a category (high None = up to 100 inclusive): for filters and previews."""
    for i, b in enumerate(bounds):
        if b["name"] == name:
            return b["min"], (bounds[i + 1]["min"] if i + 1 < len(bounds) else None)
    raise KeyError(name)
