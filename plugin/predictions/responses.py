"""What the predictions API answers, as marshmallow schemas: they shape the OpenAPI document's
responses (the request schemas are in `schemas`)."""
from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from plugin.predictions import trainings


class TrainingOut(Schema):
    state = fields.String(required=True, metadata={
        "enum": ["building", *trainings.STATES[2:]],
        "description": "building (queued or training), ready, refused (not enough data: counts in details) or failed"})
    requested_at = fields.String(required=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    model_id = fields.Integer(allow_none=True)
    details = fields.Dict(allow_none=True, metadata={
        "description": "refused: code, message, eligible_users, positives, negatives, min_positives, "
                       "min_negatives; failed: code, message; ready: users_scored"})


class DataWarningOut(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class DataCheckOut(Schema):
    """The recent window's data for a definition (see `plugin.predictions.datacheck`)."""

    window_days = fields.Integer(required=True)
    cutoff = fields.Integer(required=True, metadata={"description": "epoch seconds: eligibility as of here"})
    as_of = fields.Integer(required=True, metadata={"description": "converters counted in (cutoff, as_of]"})
    eligible_users = fields.Integer(required=True)
    past_converters = fields.Integer(required=True)
    non_converters = fields.Integer(required=True)
    min_positives = fields.Integer(required=True)
    min_negatives = fields.Integer(required=True)
    enough = fields.Boolean(required=True)
    warnings = fields.List(fields.Nested(DataWarningOut), required=True)


class PredictionOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    goal_event = fields.String(required=True)
    goal_condition = fields.Dict(allow_none=True)
    window_days = fields.Integer(required=True)
    audience = fields.Dict(allow_none=True)
    categories = fields.Dict(required=True)
    schedule = fields.String(required=True)
    retrain_days = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": ["demo", "preview", "active", "archived"]})
    current_model_id = fields.Integer(allow_none=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    last_trained_at = fields.String(allow_none=True)
    last_scored_at = fields.String(allow_none=True)
    last_backtested_at = fields.String(allow_none=True)
    model = fields.Dict(allow_none=True, metadata={"description": "the current model: counts, metrics, quality"})
    latest_run = fields.Dict(allow_none=True, metadata={"description": "the latest scoring run's summary"})
    training = fields.Nested(TrainingOut, allow_none=True, metadata={"description": "the latest training asked for"})


class CreatedPredictionOut(PredictionOut):
    data_check = fields.Nested(DataCheckOut, required=True)


class PredictionListOut(Schema):
    predictions = fields.List(fields.Nested(PredictionOut), required=True)


class BacktestListOut(Schema):
    backtests = fields.List(fields.Dict(), required=True)


class ModelOut(Schema):
    id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    trained_at = fields.String(required=True)
    cutoff = fields.String(required=True)
    counts = fields.Dict(required=True)
    params = fields.Dict(required=True)
    calibration = fields.String(required=True)
    metrics = fields.Dict(required=True, metadata={"description": "AUC, log loss, Brier, quality, calibration table, "
                                                                  "feature importances, threshold curve"})


class ScoringRunOut(Schema):
    """A scoring run's summary (what POST /score answers)."""

    class Meta:
        unknown = INCLUDE  # the summary also carries the run's histogram and category bounds

    run_id = fields.Integer()
    model_id = fields.Integer()
    users_scored = fields.Integer()
    expected_conversions = fields.Float()


class UserReasonsOut(Schema):
    user_id = fields.String(required=True)
    score = fields.Float(required=True)
    category = fields.String(required=True)
    model = fields.Dict(required=True)
    scored_at = fields.Raw(allow_none=True)
    as_of = fields.Raw(allow_none=True)
    baseline = fields.Float(required=True)
    raised = fields.List(fields.Dict(), required=True)
    lowered = fields.List(fields.Dict(), required=True)
