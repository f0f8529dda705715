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
from plugin.api.docs import STANDARD_ERRORS, api_doc
from plugin.api.requests import json_body, load
from plugin.predictions import backtest, coverage, datacheck, definitions, models, reasons, scoring, training, trainings
from plugin.predictions.definitions import Prediction
from plugin.predictions.responses import (
    BacktestListOut,
    CreatedPredictionOut,
    DataCheckOut,
    ModelOut,
    PredictionListOut,
    PredictionOut,
    ScoringRunOut,
    UserReasonsOut,
)
from plugin.predictions.schemas import (
    AsOfSchema,
    BacktestRequestSchema,
    ListQuerySchema,
    PredictionPatchSchema,
    PredictionSchema,
)

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
            "latest_run": scoring.run_summary(scoring.latest_run(conn, prediction.id)),
            "training": trainings.latest(conn, prediction.id)}


def _get(conn, prediction_id: int) -> Prediction:
    return definitions.get(conn, v1.workspace().id, prediction_id)


@bp.post("")
@api_doc(summary="Create a prediction (its first training is queued at once)", tags=["predictions"],
         body=PredictionSchema, responses={201: CreatedPredictionOut},
         description="Checks the data first: a goal event never received is a 400 `unknown_goal_event`; "
                     "the answer's `data_check` counts the last `window_days` (eligible users, past "
                     "converters) and warns `not_enough_data`. `training.state` is `building` until the "
                     "scheduler's `train_queued` job has trained and scored it (`ready`, or `refused` with the counts).")
def create():
    data = load(PredictionSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        prediction, checked = datacheck.create_checked(conn, v1.workspace().id, data, _settings(), int(time.time()))
        body = {**view(conn, prediction), "data_check": checked.as_dict(),
                "warnings": checked.warnings + coverage.audience_warnings(conn, prediction)}
    return jsonify(body), 201


@bp.post("/check")
@api_doc(summary="Check a definition's data without saving it", tags=["predictions"], body=PredictionSchema,
         responses={200: DataCheckOut})
def check():
    """The data check alone, before saving: what the creation form shows as the marketer types."""
    data = load(PredictionSchema(), json_body())
    with store.engine().connect() as conn:
        checked = datacheck.check(conn, v1.workspace().id, data, int(time.time()),
                                  _settings()["min_positives"], _settings()["min_negatives"])
    return jsonify(checked.as_dict())


@bp.get("")
@api_doc(summary="List the workspace's predictions", tags=["predictions"], query=ListQuerySchema,
         responses={200: PredictionListOut})
def list_predictions():
    query = load(ListQuerySchema(), request.args.to_dict())
    with store.engine().connect() as conn:
        found = definitions.list_all(conn, v1.workspace().id, query["status"])
        return jsonify({"predictions": [view(conn, p) for p in found]})


@bp.get("/<int:prediction_id>")
@api_doc(summary="A prediction: definition, current model, latest run, training state", tags=["predictions"],
         responses={200: PredictionOut})
def show(prediction_id: int):
    with store.engine().connect() as conn:
        return jsonify(view(conn, _get(conn, prediction_id)))


@bp.patch("/<int:prediction_id>")
@api_doc(summary="Change a prediction (not its goal or window)", tags=["predictions"], body=PredictionPatchSchema,
         responses={200: PredictionOut})
def change(prediction_id: int):
    changes = load(PredictionPatchSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        prediction = definitions.change(conn, v1.workspace().id, prediction_id, changes,
                                        _settings()["max_active_predictions"])
        warnings = coverage.audience_warnings(conn, prediction) if "audience" in changes else []
        return jsonify({**view(conn, prediction), "warnings": warnings})


@bp.post("/<int:prediction_id>/archive")
@api_doc(summary="Archive a prediction (idempotent)", tags=["predictions"], responses={200: PredictionOut})
def archive(prediction_id: int):
    with store.transaction(store.engine()) as conn:
        return jsonify(view(conn, definitions.archive(conn, v1.workspace().id, prediction_id)))


@bp.post("/<int:prediction_id>/unarchive")
@api_doc(summary="Restore an archived prediction to the status it had", tags=["predictions"],
         responses={200: PredictionOut})
def unarchive(prediction_id: int):
    with store.transaction(store.engine()) as conn:
        return jsonify(view(conn, definitions.unarchive(conn, v1.workspace().id, prediction_id,
                                                        _settings()["max_active_predictions"])))


@bp.post("/<int:prediction_id>/train")
@api_doc(summary="Train a new model version now", tags=["predictions"], body=AsOfSchema, body_required=False,
         responses={201: ModelOut}, errors=(*STANDARD_ERRORS, 422),
         description="422 `not_enough_data` with the counts found when too few users converted (or did not).")
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
@api_doc(summary="Score every eligible user now with the current model", tags=["predictions"], body=AsOfSchema,
         body_required=False, responses={200: ScoringRunOut})
def score(prediction_id: int):
    as_of = load(AsOfSchema(), _optional_body())["as_of"] or int(time.time())
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    return jsonify(scoring.score(engine, prediction, as_of))


@bp.get("/<int:prediction_id>/users/<path:user_id>")
@api_doc(summary="One user's score and the factors behind it", tags=["predictions"],
         responses={200: UserReasonsOut})
def user_reasons(prediction_id: int, user_id: str):
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    return jsonify(reasons.explain(engine, prediction, user_id))


@bp.get("/<int:prediction_id>/backtests")
@api_doc(summary="A prediction's backtests", tags=["predictions"], responses={200: BacktestListOut})
def list_backtests(prediction_id: int):
    with store.engine().connect() as conn:
        prediction = _get(conn, prediction_id)
        return jsonify({"backtests": backtest.list_for(conn, prediction.id)})


@bp.post("/<int:prediction_id>/backtests")
@api_doc(summary="Backtest the runs whose window has passed", tags=["predictions"], body=BacktestRequestSchema,
         body_required=False, responses={200: BacktestListOut, 201: BacktestListOut},
         description="201 when backtests were made, 200 when none was due.")
def run_backtests(prediction_id: int):
    run_id = load(BacktestRequestSchema(), _optional_body())["run_id"]
    engine = store.engine()
    with engine.connect() as conn:
        prediction = _get(conn, prediction_id)
    results = backtest.run(engine, prediction, int(time.time()), run_id)
    return jsonify({"backtests": results}), 201 if results else 200
