"""Why a user has their score: LightGBM's per-feature SHAP contributions (`pred_contrib=True`).

The user's features are rebuilt as of the run that gave the stored score, with the model that
gave it. Contributions are on the model's log-odds scale before calibration (calibration is
monotone, so what raises the log-odds raises the score); they are reported with each feature's
plain name and the user's value.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from plugin.errors import NotFound
from plugin.predictions import features, models
from plugin.predictions.reader import read_chunks
from plugin.predictions.scoring import latest_run
from plugin.store.tables import scores, users

TOP_FACTORS = 5


def explain(engine: Engine, prediction: Any, external_id: str, top: int = TOP_FACTORS) -> dict:
    """Score, category, model version and the top factors raising and lowering one user's score."""
    with engine.connect() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.workspace_id == prediction.workspace_id,
                                                        users.c.external_id == external_id)).scalar()
        if user_id is None:
            raise NotFound(f"user {external_id!r} does not exist", code="user_not_found")
        stored = conn.execute(select(scores).where(scores.c.prediction_id == prediction.id,
                                                   scores.c.user_id == user_id)).first()
        if stored is None:
            raise NotFound(f"user {external_id!r} has no score for this prediction (not eligible at the last "
                           "scoring run, or not scored yet)", code="not_scored")
        model = models.load(conn, stored.model_id)
        run = latest_run(conn, prediction.id)
    as_of = run.as_of if run is not None else stored.scored_at
    chunk = next(read_chunks(engine, prediction, model.spec, as_of, as_of, only_user_id=user_id))
    matrix = features.compute(chunk, model.spec, as_of).matrix
    contributions = model.booster.predict(matrix, pred_contrib=True)[0]
    factors = [{"feature": column["label"], "key": column["key"], "value": _value(model.spec, column, matrix[0, i]),
                "impact": round(float(contributions[i]), 4)}
               for i, column in enumerate(model.columns()) if contributions[i] != 0]
    raised = sorted((f for f in factors if f["impact"] > 0), key=lambda f: -f["impact"])[:top]
    lowered = sorted((f for f in factors if f["impact"] < 0), key=lambda f: f["impact"])[:top]
    return {"user_id": external_id, "score": stored.score, "category": stored.category,
            "model": {"id": model.id, "version": model.version}, "scored_at": stored.scored_at, "as_of": as_of,
            "baseline": round(float(contributions[-1]), 4), "raised": raised, "lowered": lowered}


def _value(spec: dict, column: dict, raw: float):
    """The user's value as a person would read it: a category's name, a whole count, or None."""
    if np.isnan(raw):
        return None
    if column["key"].startswith("attribute:"):
        attribute = next(a for a in spec["attributes"] if f"attribute:{a['name']}" == column["key"])
        if attribute["kind"] == "categorical":
            return attribute["values"][int(raw)]
        if attribute["kind"] in ("boolean", "present"):
            return bool(raw)
    return int(raw) if float(raw).is_integer() else round(float(raw), 2)
