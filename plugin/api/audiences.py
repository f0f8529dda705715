"""POST /v1/audiences/preview: size, share, expected conversions and test-set figures of a definition."""
from __future__ import annotations

import time

from flask import current_app, jsonify
from marshmallow import Schema, fields, validate

from plugin import store
from plugin.api import v1
from plugin.api.docs import api_doc
from plugin.api.requests import json_body, load
from plugin.audiences.population import PopulationCache
from plugin.audiences.preview import preview
from plugin.audiences.schema import AudienceDefinition

bp = v1.blueprint("audiences", __name__, "/audiences")
MAX_SAMPLE = 100


class PreviewRequestSchema(Schema):
    definition = AudienceDefinition(required=True)
    sample = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, MAX_SAMPLE),
                            metadata={"description": "How many matching users to return (highest score first)."})


class HoldoutFiguresSchema(Schema):
    prediction_id = fields.Integer()
    model_id = fields.Integer()
    range = fields.Dict(metadata={"description": "The score range, rounded to whole scores: gte, lt (null: no cap)."})
    test_users = fields.Integer()
    test_positives = fields.Integer()
    users = fields.Integer(metadata={"description": "Test users in the range."})
    positives = fields.Integer(metadata={"description": "Of those, how many converted."})
    recall = fields.Float(allow_none=True, metadata={"description": "Share of all test-set converters in the range."})
    expected_recall = fields.Float(allow_none=True,
                                   metadata={"description": "Share of all expected (sum of probabilities) conversions."})
    precision = fields.Float(allow_none=True)
    false_positive_rate = fields.Float(allow_none=True)
    other_filters_ignored = fields.Boolean(
        metadata={"description": "True when other filters are layered on the range: the figures are for the range alone."})


class PredictionFiguresSchema(Schema):
    prediction_id = fields.Integer()
    name = fields.String()
    goal_event = fields.String()
    window_days = fields.Integer()
    scored_users = fields.Integer()
    expected_conversions = fields.Float(metadata={"description": "Sum of score / 100 over the audience."})
    expected_conversions_total = fields.Float(metadata={"description": "The same over every scored user."})
    expected_share = fields.Float(allow_none=True)


class PreviewResponseSchema(Schema):
    size = fields.Integer()
    eligible = fields.Dict(metadata={"description": "basis (scored_population | all_users), prediction_id, size."})
    share = fields.Float(allow_none=True)
    predictions = fields.List(fields.Nested(PredictionFiguresSchema))
    targeting = fields.Nested(HoldoutFiguresSchema, allow_none=True)
    summary = fields.String()
    sample = fields.List(fields.Dict())


def population_cache() -> PopulationCache:
    """One per app (so per worker process and per store)."""
    return current_app.extensions.setdefault("likely_population_cache", PopulationCache())


# Built once: a schema's construction (field copies, nested schemas) costs more than its use.
PREVIEW_REQUEST, PREVIEW_RESPONSE = PreviewRequestSchema(), PreviewResponseSchema()


@bp.post("/preview")
@api_doc(summary="Preview an audience: size, expected conversions, test-set figures", tags=["audiences"],
         body=PreviewRequestSchema, responses={200: PreviewResponseSchema})
def preview_audience():
    data = load(PREVIEW_REQUEST, json_body())
    with store.reading(store.engine()) as conn:
        figures = preview(conn, v1.workspace().id, data["definition"], int(time.time()),
                          sample=data["sample"], cache=population_cache())
    return jsonify(PREVIEW_RESPONSE.dump(figures))
