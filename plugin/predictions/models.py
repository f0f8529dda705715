"""Trained models: versioned rows in `prediction_models`, loadable by any process.

A model row holds everything scoring needs — LightGBM's model text, the calibration, the
feature spec — so a web worker or the scheduler can score with it without the trainer.
Rows never change once written, so a loaded model is cached by id.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lightgbm as lgb
import numpy as np
from sqlalchemy import Connection, func, insert, select, update

from plugin.predictions import calibration, features
from plugin.store.tables import prediction_models, predictions
from plugin.store.types import utcnow

CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, int], "Model"] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Model:
    id: int
    prediction_id: int
    version: int
    created_at: datetime
    cutoff_at: datetime
    booster: lgb.Booster
    calibration: dict
    spec: dict
    params: dict
    counts: dict
    metrics: dict

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, raw_score=True)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated scores 0–100, kept to 0.01 (what is stored and what categories use)."""
        return score_from_margins(self.calibration, self.margins(matrix))

    def columns(self) -> list[dict]:
        return features.columns(self.spec)


def score_from_margins(calibration_: dict, margins: np.ndarray) -> np.ndarray:
    return np.round(calibration.apply(calibration_, margins) * 100.0, 2)


def save(conn: Connection, prediction: Any, booster: lgb.Booster, calibration_: dict, spec: dict,
         params: dict, counts: dict, metrics: dict, cutoff_at: datetime) -> int:
    """Store a new version and make it the prediction's current model (inside the caller's transaction)."""
    version = (conn.execute(select(func.max(prediction_models.c.version))
                            .where(prediction_models.c.prediction_id == prediction.id)).scalar() or 0) + 1
    now = utcnow()
    model_id = conn.execute(insert(prediction_models).values(
        workspace_id=prediction.workspace_id, prediction_id=prediction.id, version=version, created_at=now,
        cutoff_at=cutoff_at, model_text=booster.model_to_string(), calibration=calibration_, features=spec,
        params=params, counts=counts, metrics=metrics).returning(prediction_models.c.id)).scalar_one()
    conn.execute(update(predictions).where(predictions.c.id == prediction.id)
                 .values(current_model_id=model_id, last_trained_at=now, updated_at=now))
    return model_id


def load(conn: Connection, model_id: int) -> Model:
    """A model by id (cached: model rows are immutable)."""
    key = (conn.engine.url.render_as_string(hide_password=True), model_id)  # ids are per store
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    row = conn.execute(select(prediction_models).where(prediction_models.c.id == model_id)).one()
    model = Model(id=row.id, prediction_id=row.prediction_id, version=row.version, created_at=row.created_at,
                  cutoff_at=row.cutoff_at, booster=lgb.Booster(model_str=row.model_text),
                  calibration=row.calibration, spec=row.features, params=row.params, counts=row.counts,
                  metrics=row.metrics)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def current(conn: Connection, prediction: Any) -> Model | None:
    """The prediction's current model, or None before its first training."""
    return load(conn, prediction.current_model_id) if prediction.current_model_id else None


def summary(conn: Connection, model_id: int | None) -> dict | None:
    """What the API and `predictions show` report about a model (no model text)."""
    if model_id is None:
        return None
    row = conn.execute(select(prediction_models.c.id, prediction_models.c.version, prediction_models.c.created_at,
                              prediction_models.c.cutoff_at, prediction_models.c.counts,
                              prediction_models.c.params, prediction_models.c.calibration,
                              prediction_models.c.metrics)
                       .where(prediction_models.c.id == model_id)).one()
    return {"id": row.id, "version": row.version, "trained_at": row.created_at.isoformat(),
            "cutoff": row.cutoff_at.isoformat(), "counts": row.counts, "params": row.params,
            "calibration": row.calibration["method"], "metrics": row.metrics}
