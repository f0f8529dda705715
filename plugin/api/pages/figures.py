"""What a prediction page shows, read from the store: definition, quality, distribution, factors.

Everything comes from what training, scoring and backtests stored (`prediction_models.metrics`,
the latest `scoring_runs` row, `backtests`); nothing is recomputed here. The caller has
already scoped the prediction to the signed-in workspace.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from plugin.audiences.preview import goal_verb
from plugin.audiences.targeting import is_targetable
from plugin.predictions import backtest, categories, models, quality, scoring
from plugin.predictions.definitions import Prediction

BUCKETS = 20
TOP_FACTORS = 10

QUALITY_MEANING = {
    "Excellent": "The model ranks users very well: most of the users who will {goal} are at the top of "
                 "the score range. Target by score with confidence.",
    "Good": "The model clearly separates likely from unlikely users: targeting a high score range "
            "reaches far more of the users who will {goal} than picking users at random.",
    "Fair": "The model does better than random, but likely and unlikely users overlap a good deal: "
            "prefer broad score ranges and check the results against a control group.",
    "Poor": "The scores are close to random for this goal: wait for more data (or choose another goal) "
            "before targeting by them.",
}
NOT_TARGETABLE_REASON = {
    "demo": "This is a demo prediction on bundled sample data: it shows analytics only, so segments and "
            "campaigns cannot be created from it.",
    "preview": "This is a preview prediction (one run on your data, never updated): it shows analytics only, "
               "so segments and campaigns cannot be created from it. Activate it to target its users.",
    "archived": "This prediction is archived: it is no longer scored, so segments and campaigns cannot be "
                "created from it.",
}


def goal_text(prediction: Prediction) -> str:
    """`purchase`, `purchase where value > 20`, or `churn: no purchase`."""
    condition = prediction.goal_condition
    if prediction.goal_kind == "churn":
        return f"churn: no {prediction.goal_event}" + (f" where {condition['property']} …" if condition else "")
    if not condition:
        return prediction.goal_event
    ops = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in"}
    value = condition["value"]
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{prediction.goal_event} where {condition['property']} {ops.get(condition['op'], condition['op'])} {shown}"


def histogram_buckets(per_point: list[int] | None) -> list[dict]:
    """The run's 100 one-point bins ([k, k+1), the last [99, 100]) as 20 buckets of 5 points."""
    counts = list(per_point or []) + [0] * (100 - len(per_point or []))
    width = 100 // BUCKETS
    return [{"from": i * width, "to": (i + 1) * width, "users": int(sum(counts[i * width:(i + 1) * width]))}
            for i in range(BUCKETS)]


def axis_ticks(largest: int, most: int = 5) -> list[int]:
    """Round ticks from 0 to at least `largest`: steps of 1, 2 or 5 × 10^k, at most `most` of them."""
    step = 1
    while math.ceil(max(largest, 1) / step) > most:
        step = step * 5 // 2 if str(step).startswith("2") else step * 2  # 1, 2, 5, 10, 20, 50, …
    return [i * step for i in range(math.ceil(max(largest, 1) / step) + 1)]


def category_rows(run: Any, prediction: Prediction) -> list[dict]:
    """Per category: its score range [min, max) and the users the latest run put in it."""
    stored = (run.categories or {}) if run is not None else {}
    bounds = stored.get("bounds") or (categories.resolve_bounds(prediction.categories)
                                      if prediction.categories.get("type") == "fixed" else [])
    users = stored.get("users") or {}
    rows = []
    for bound in bounds:
        low, high = categories.score_range(bounds, bound["name"])
        rows.append({"name": bound["name"], "min": low, "max": 100.0 if high is None else high,
                     "users": int(users.get(bound["name"], 0))})
    return rows


def quality_figures(metrics: dict | None, goal: str) -> dict | None:
    if not metrics or metrics.get("prediction_quality") is None:
        return None
    value = float(metrics["prediction_quality"])
    band = metrics.get("quality_band") or quality.quality_band(value)
    interval = metrics.get("prediction_quality_interval")
    return {"value": value, "band": band, "meaning": QUALITY_MEANING[band].format(goal=goal),
            "interval": interval, "low_confidence": bool(metrics.get("quality_low_confidence")),
            "low_confidence_converters": quality.LOW_CONFIDENCE_CONVERTERS,
            "auc": metrics.get("auc"), "log_loss": metrics.get("log_loss"), "brier": metrics.get("brier"),
            "base_rate": metrics.get("base_rate"), "test_users": metrics.get("test_users"),
            "test_positives": metrics.get("test_positives"),
            "mean_predicted": metrics.get("mean_predicted"), "mean_gap_pp": metrics.get("mean_gap_pp"),
            "calibration_error_pp": metrics.get("expected_calibration_error_pp")}


def calibration_points(metrics: dict | None) -> list[dict]:
    """Bins with test users: mean predicted and observed rate, both in percent."""
    rows = (metrics or {}).get("calibration") or []
    return [{"from": r["score_from"], "to": r["score_to"], "users": r["users"],
             "predicted": r["mean_predicted"] * 100, "observed": r["observed_rate"] * 100}
            for r in rows if r.get("users") and r.get("mean_predicted") is not None]


def factors(metrics: dict | None) -> list[dict]:
    rows = (metrics or {}).get("feature_importance") or []
    return [{"name": r["feature"], "share": float(r["share"])} for r in rows[:TOP_FACTORS]]


def latest_backtest(conn: Connection, prediction: Prediction) -> dict | None:
    found = backtest.list_for(conn, prediction.id)
    if not found:
        return None
    metrics = found[0]["metrics"]
    return {"as_of": datetime.fromtimestamp(metrics["as_of"], timezone.utc).date().isoformat() if metrics.get("as_of") else None,
            "users": metrics.get("users"), "expected": metrics.get("expected_conversions"),
            "actual": metrics.get("actual_conversions"), "auc": metrics.get("auc"),
            "quality": metrics.get("prediction_quality"), "band": metrics.get("quality_band")}


def page(conn: Connection, prediction: Prediction) -> dict[str, Any]:
    """Everything the prediction page renders."""
    model = models.summary(conn, prediction.current_model_id)
    metrics = model["metrics"] if model else None
    run = scoring.latest_run(conn, prediction.id)
    goal, verb = goal_text(prediction), goal_verb(prediction.goal_event)
    if prediction.goal_kind == "churn":
        verb = f"not {verb} again"  # the score is the risk of NOT doing it
    buckets = histogram_buckets(run.histogram if run is not None else None)
    return {
        "prediction": prediction,
        "goal": goal,
        "targetable": is_targetable(prediction.status),
        "not_targetable_reason": NOT_TARGETABLE_REASON.get(prediction.status),
        "model": model,
        "goal_verb": verb,
        "score_name": "Churn Risk Score" if prediction.goal_kind == "churn" else "Event Likelihood Score",
        "category_name": "Churn Risk Category" if prediction.goal_kind == "churn" else "Event Likelihood Category",
        "quality": quality_figures(metrics, verb),
        "run": scoring.run_summary(run),
        "buckets": buckets,
        "ticks": axis_ticks(max((b["users"] for b in buckets), default=0)),
        "categories": category_rows(run, prediction),
        "calibration": calibration_points(metrics),
        "factors": factors(metrics),
        "backtest": latest_backtest(conn, prediction),
    }


def listing_row(conn: Connection, prediction: Prediction) -> dict[str, Any]:
    """One line of the predictions list."""
    model = models.summary(conn, prediction.current_model_id)
    run = scoring.latest_run(conn, prediction.id)
    return {"prediction": prediction, "goal": goal_text(prediction),
            "quality": quality_figures(model["metrics"] if model else None, goal_verb(prediction.goal_event)),
            "users_scored": run.users_scored if run is not None else None}
