"""Payloads of the predictions API (and the CLI, which validates through the same schemas)."""
from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from plugin.errors import CHOICE_ERROR, LikelyError
from plugin.ids import Id, is_int64
from plugin.ingest.schemas import ATTRIBUTE_NAME, Timestamp
from plugin.predictions import categories
from plugin.predictions.definitions import DEFAULT_RETRAIN_DAYS, GOAL_KINDS, IMMUTABLE, SCHEDULES
from plugin.predictions.eligibility import CONDITION_OPS, NUMERIC_OPS

MAX_IN_VALUES = 100


class Trimmed(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class GoalConditionSchema(Schema):
    """A condition on one property of the goal event, e.g. {"property": "value", "op": "gt", "value": 20}."""

    property = fields.String(required=True, validate=validate.Regexp(ATTRIBUTE_NAME, error="not a property name"))
    op = fields.String(required=True, validate=validate.OneOf(CONDITION_OPS, error=CHOICE_ERROR))
    value = fields.Raw(required=True, allow_none=False)

    @validates_schema
    def check_value(self, data: dict, **kwargs) -> None:
        op, value = data.get("op"), data.get("value")
        if op in NUMERIC_OPS and not _number(value):
            raise ValidationError(f"{op} compares with a number", "value")
        if op == "in" and not (isinstance(value, list) and 0 < len(value) <= MAX_IN_VALUES
                               and all(_scalar(v) for v in value)):
            raise ValidationError(f"in takes a list of 1 to {MAX_IN_VALUES} strings, numbers or booleans", "value")
        if op in ("eq", "ne") and not _scalar(value):
            raise ValidationError(f"{op} compares with a string, number or boolean", "value")


def _number(value: Any) -> bool:
    # Whole numbers within the stores' 64-bit integers: a bigger one is a 400, not a driver error.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and is_int64(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _number(value)


class CategoryScheme(fields.Field):
    """A category scheme (see plugin.predictions.categories)."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        try:
            return categories.validate(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class AudienceTree(fields.Dict):
    """The eligible audience: a filter tree (null = every user with any event up to the cutoff)."""

    def _deserialize(self, value, attr, data, **kwargs):
        tree = super()._deserialize(value, attr, data, **kwargs)
        try:
            from plugin.audiences.compiler import parse_definition
        except ImportError:
            return tree
        try:
            return parse_definition(tree)
        except LikelyError as error:  # the audiences package's own 400 carries its field paths
            raise ValidationError(error.details or error.message) from None


class PredictionSchema(Schema):
    """A prediction. The goal is `goal_event` (+ `goal_kind`), or equally
    `goal: {"kind": "event" | "churn", "event": …}`; churn predicts the risk that an active user
    does NOT perform the event within the window."""

    id = fields.Integer(dump_only=True)
    name = Trimmed(required=True, validate=validate.Length(1, 255))
    goal_event = Trimmed(required=True, validate=validate.Length(1, 255))
    goal_kind = fields.String(load_default="event", validate=validate.OneOf(GOAL_KINDS),
                              metadata={"description": "event: will the user perform goal_event? churn: will an "
                                                       "active user NOT perform it within the window?"})
    goal_condition = fields.Nested(GoalConditionSchema, allow_none=True, load_default=None)
    window_days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60))
    audience = AudienceTree(allow_none=True, load_default=None)
    categories = CategoryScheme(load_default=lambda: dict(categories.DEFAULT_SCHEME))
    schedule = fields.String(load_default="daily", validate=validate.OneOf(SCHEDULES, error=CHOICE_ERROR))
    retrain_days = fields.Integer(load_default=DEFAULT_RETRAIN_DAYS, strict=True, validate=validate.Range(1, 365))
    status = fields.String(load_default="active", validate=validate.OneOf(["demo", "preview", "active"], error=CHOICE_ERROR),
                           metadata={"description": "archived only through POST /{id}/archive"})
    current_model_id = fields.Integer(dump_only=True, allow_none=True)
    created_at = fields.String(dump_only=True)
    updated_at = fields.String(dump_only=True)
    last_trained_at = fields.String(dump_only=True, allow_none=True)
    last_scored_at = fields.String(dump_only=True, allow_none=True)
    last_backtested_at = fields.String(dump_only=True, allow_none=True)

    @pre_load
    def goal_object(self, data, **kwargs):
        """`goal: {"kind", "event"}` is another spelling of goal_kind + goal_event."""
        if not isinstance(data, dict) or "goal" not in data:
            return data
        goal = data.get("goal")
        if not isinstance(goal, dict) or set(goal) - {"kind", "event"} or "event" not in goal:
            raise ValidationError('goal is {"kind": "event" | "churn", "event": "<event name>"}', "goal")
        data = {k: v for k, v in data.items() if k != "goal"}
        return {**data, "goal_event": goal["event"], "goal_kind": goal.get("kind", "event")}


class PredictionPatchSchema(Schema):
    """What may change. The goal and window define what a model learns: change them with a new prediction."""

    name = Trimmed(validate=validate.Length(1, 255))
    audience = AudienceTree(allow_none=True)
    categories = CategoryScheme()
    schedule = fields.String(validate=validate.OneOf(SCHEDULES, error=CHOICE_ERROR))
    retrain_days = fields.Integer(strict=True, validate=validate.Range(1, 365))
    status = fields.String(validate=validate.OneOf(["demo", "preview", "active"], error=CHOICE_ERROR))
    goal_event = fields.Raw()
    goal_kind = fields.Raw()
    goal = fields.Raw()
    goal_condition = fields.Raw(allow_none=True)
    window_days = fields.Raw()

    @validates_schema
    def immutable(self, data: dict, **kwargs) -> None:
        errors = {name: ["cannot be changed; create a new prediction instead"] for name in (*IMMUTABLE, "goal")
                  if name in data}
        if errors:
            raise ValidationError(errors)


class AsOfSchema(Schema):
    """Train or score as of a moment (default now): a date (midnight UTC), ISO 8601 time or epoch seconds."""

    as_of = Timestamp(load_default=None, allow_none=True)


class BacktestRequestSchema(Schema):
    run_id = Id(load_default=None, allow_none=True)


class ListQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(["demo", "preview", "active", "archived"], error=CHOICE_ERROR))
