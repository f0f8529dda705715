"""Bands: which users a tier takes, checked against the prediction's category scheme.

A score band is [min, max), except that max 100 includes a score of exactly 100 (as the
High category does). Bands of one campaign must not overlap, so every user lands in at most
one tier; that is checked here, and the tiers' offers are checked against the sliding scale.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import ColumnElement, and_, or_

from plugin.errors import ValidationFailed
from plugin.store.tables import scores

OVERLAP = "overlapping_bands"


def scheme_bins(scheme: Any) -> tuple[str, list[dict]]:
    """(type, bins) of a prediction's category scheme; an unknown shape has no bins."""
    if isinstance(scheme, dict) and isinstance(scheme.get("bins"), list):
        bins = [b for b in scheme["bins"] if isinstance(b, dict) and isinstance(b.get("name"), str)]
        return str(scheme.get("type", "fixed")), bins
    return "unknown", []


def category_ranges(scheme: Any) -> dict[str, tuple[float, float]] | None:
    """{category: (min, max)} of a fixed scheme, None when categories move with each run."""
    kind, bins = scheme_bins(scheme)
    if kind != "fixed" or not bins or not all(isinstance(b.get("min"), (int, float)) for b in bins):
        return None
    ordered = sorted(bins, key=lambda b: b["min"])
    tops = [b["min"] for b in ordered[1:]] + [100.0]
    return {b["name"]: (float(b["min"]), float(top)) for b, top in zip(ordered, tops)}


def _interval(tier: dict, ranges: dict | None) -> tuple[float, float] | None:
    band = tier["band"]
    if "score" in band:
        return float(band["score"]["min"]), float(band["score"]["max"])
    if ranges is None:
        return None
    spans = [ranges[c] for c in band["categories"] if c in ranges]
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def check_bands(tiers: Sequence[dict], scheme: Any) -> None:
    """400 for unknown categories or bands that overlap (named by tier index)."""
    _, bins = scheme_bins(scheme)
    names = [b["name"] for b in bins]
    unknown = {}
    for i, tier in enumerate(tiers):
        missing = [c for c in tier["band"].get("categories", []) if names and c not in names]
        if missing:
            unknown[str(i)] = {"band": {"categories": [f"Not a category of this prediction: {', '.join(missing)} "
                                                       f"(categories: {', '.join(names)})."]}}
    if unknown:
        raise ValidationFailed("a band names a category the prediction does not have",
                               code="unknown_category", details={"tiers": unknown})
    ranges = category_ranges(scheme)
    for i, a in enumerate(tiers):
        for j in range(i + 1, len(tiers)):
            b = tiers[j]
            if _overlap(a, b, ranges):
                raise ValidationFailed(
                    f"tiers {a['name']!r} and {b['name']!r} overlap: a user would be in both",
                    code=OVERLAP, details={"tiers": {str(j): {"band": [f"Overlaps tier {i} ({a['name']})."]}}})


def _overlap(a: dict, b: dict, ranges: dict | None) -> bool:
    cats_a, cats_b = a["band"].get("categories"), b["band"].get("categories")
    if cats_a is not None and cats_b is not None:
        return bool(set(cats_a) & set(cats_b))
    ia, ib = _interval(a, ranges), _interval(b, ranges)
    if ia is None or ib is None:
        # Quantile categories move with every scoring run: no score range can be proven apart.
        raise ValidationFailed("this prediction's categories are quantiles, so category and score "
                               "bands cannot be mixed in one campaign", code=OVERLAP)
    return max(ia[0], ib[0]) < min(ia[1], ib[1])


def likelihood_rank(tier: dict, scheme: Any) -> float:
    """A number that grows with how likely the tier's users are (for the sliding scale)."""
    band = tier["band"]
    if "score" in band:
        return float(band["score"]["min"])
    ranges = category_ranges(scheme)
    if ranges:
        return min(ranges[c][0] for c in band["categories"] if c in ranges)
    names = [b["name"] for b in scheme_bins(scheme)[1]]
    return float(min((names.index(c) for c in band["categories"] if c in names), default=0))


def offer_warnings(tiers: Sequence[dict], scheme: Any) -> list[str]:
    """The sliding scale: the more likely a tier's users, the smaller its discount."""
    ordered = sorted(tiers, key=lambda t: likelihood_rank(t, scheme))
    warnings = []
    for lower, higher in zip(ordered, ordered[1:]):
        low_d = lower["offer"].get("discount_percent", 0)
        high_d = higher["offer"].get("discount_percent", 0)
        if high_d > low_d:
            warnings.append(f"tier {higher['name']!r} is more likely to convert than {lower['name']!r} "
                            f"but gets a bigger discount ({high_d}% > {low_d}%)")
    return warnings


def band_condition(band: dict) -> ColumnElement:
    """The band as a condition on `scores` rows."""
    if "categories" in band:
        return scores.c.category.in_(list(band["categories"]))
    low, high = float(band["score"]["min"]), float(band["score"]["max"])
    upper = or_(scores.c.score < high, scores.c.score == 100.0) if high >= 100 else scores.c.score < high
    return and_(scores.c.score >= low, upper)


def tier_of(tiers: Sequence[dict], score: float, category: str) -> int | None:
    """The index of the tier a score/category falls in (the Python twin of band_condition)."""
    for i, tier in enumerate(tiers):
        band = tier["band"]
        if "categories" in band:
            if category in band["categories"]:
                return i
        else:
            low, high = band["score"]["min"], band["score"]["max"]
            if low <= score < high or (high >= 100 and score == 100):
                return i
    return None
