"""/v1/predictions: definitions, training, scoring, quality, per-user reasons and backtests.

Every query is scoped to the caller's workspace: another workspace's prediction is a 404.
Training and scoring run in the request (fine for small workspaces; the scheduler and the
CLI run the same functions for large ones).
"""
from __future__ import annotations

import time

from flask import current_app, jsonify, request

from plugin import store
from plugin.api import v1
from plugin.api.requests import json_body, load
from plugin.predictions import backtest, coverage, definitions, models, reasons, scoring, training
from plugin.predictions.definitions import Prediction
from plugin.predictions.schemas import (AsOfSchema, BacktestRequestSchema, ListQuerySchema, PredictionPatchSchema,
                                        PredictionSchema)

bp = v1.blueprint("predictions", __name__, "/predictions")


def _settings() -> dict:
    return current_app.config["LIKELY"]


def _optional_body() -> object:
    return json_body() if request.get_data(cache=True) else {}


def view(conn, prediction: Prediction) -> dict:
    """A prediction as the API shows it: its definition, current model (with quality) and latest run."""
    return {**PredictionSchema().dump(prediction.as_dict()),
            "goal": {"kind": prediction.goal_kind, "event": prediction.goal_event},
            "model": models.summary(conn, prediction.current_model_id),
            "latest_run": scoring.run_summary(scoring.latest_run(conn, prediction.id))}


def _get(conn, prediction_id: int) -> Prediction:
    return definitions.get(conn, v1.workspace().id, prediction_id)


@bp.post("")
def create():
    data = load(PredictionSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        prediction = definitions.create(conn, v1.workspace().id, data, _settings()["max_active_predictions"])
        body = {**view(conn, prediction), "warnings": coverage.audience_warnings(conn, prediction)}
    return jsonify(body), 201


@bp.get("")
def list_predictions():
    query = load(ListQuerySchema(), request.args.to_dict())
    with store.engine().connect() as conn:
        found = definitions.list_all(conn, v1.workspace().id, query["status"])
        return jsonify({"predictions": [view(conn, p) for p in found]})


@bp.get("/<int:prediction_id>")
def show(prediction_id: int):
    with store.engine().connect() as conn:
        return jsonify(view(conn, _get(conn, prediction_id)))


@bp.patch("/<int:prediction_id>")
def change(prediction_id: int):
    changes = load(PredictionPatchSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        prediction = definitions.change(conn, v1.workspace().id, prediction_id, changes,
                                        _settings()["max_active_predictions"])
        warnings = coverage.audience_warnings(conn, prediction) if "audience" in changes else []
        return jsonify({**view(conn, prediction), "warnings": warnings})


@bp.post("/<int:prediction_id>/archive")
def archive(prediction_id: int):
    with store.transaction(store.engine()) as conn:
        return jsonify(view(conn, definitions.archive(conn, v1.workspace().id, prediction_id)))


@bp.post("/<int:prediction_id>/train")
def train(prediction_id: int):
    as_of = load(AsOfSchema(), _optional_body())["as_of"] or int(time.time())
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    options = training.TrainingOptions(min_positives=_settings()["min_positives"],
                                       min_negatives=_settings()["min_negatives"])
    model_id = training.train(engine, prediction, as_of, options)
    with engine.connect() as conn:
        return jsonify(models.summary(conn, model_id)), 201


@bp.post("/<int:prediction_id>/score")
def score(prediction_id: int):
    as_of = load(AsOfSchema(), _optional_body())["as_of"] or int(time.time())
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    return jsonify(scoring.score(engine, prediction, as_of))


@bp.get("/<int:prediction_id>/users/<path:user_id>")
def user_reasons(prediction_id: int, user_id: str):
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    return jsonify(reasons.explain(engine, prediction, user_id))


@bp.get("/<int:prediction_id>/backtests")
def list_backtests(prediction_id: int):
    with store.engine().connect() as conn:
        prediction = _get(conn, prediction_id)
        return jsonify({"backtests": backtest.list_for(conn, prediction.id)})


@bp.post("/<int:prediction_id>/backtests")
def run_backtests(prediction_id: int):
    run_id = load(BacktestRequestSchema(), _optional_body())["run_id"]
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    results = backtest.run(engine, prediction, int(time.time()), run_id)
    return jsonify({"backtests": results}), 201 if results else 200
