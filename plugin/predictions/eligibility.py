"""Who a prediction scores, and which events count as its goal — as SQL, never a loop over users.

`eligible_users` is the single place eligibility is decided. With no audience tree the default
is every user with any history (at least one event up to the cutoff): a recency rule would hide
buyers who come back after a long pause, often half of a window's buyers. A tree is compiled by
the audiences package (`plugin.audiences.compiler.compile_audience`), evaluated as of the cutoff.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from plugin.errors import Conflict
from plugin.store import is_postgres
from plugin.store.tables import events

DAY = 86_400
DEFAULT_LOOKBACK_DAYS = 90
NUMERIC_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
CONDITION_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")


def eligible_users(conn: Connection, prediction: Any, as_of_ts: int) -> Select:
    """A SELECT of `id` (users.id) for every user the prediction scores as of `as_of_ts`."""
    if prediction.audience is None:
        if getattr(prediction, "goal_kind", "event") == "churn":
            return active_users(conn, prediction, as_of_ts)
        return default_audience(prediction.workspace_id, as_of_ts)
    try:
        from plugin.audiences.compiler import compile_audience
    except ImportError:
        raise Conflict("this prediction's eligible audience is a filter tree, and audience filters are not "
                       "installed", code="audience_filters_unavailable") from None
    return compile_audience(prediction.audience, prediction.workspace_id, as_of_ts)


def default_audience(workspace_id: int, as_of_ts: int) -> Select:
    """Users with any event up to and including `as_of_ts`."""
    return (select(events.c.user_id.label("id")).distinct()
            .where(events.c.workspace_id == workspace_id, events.c.ts <= as_of_ts))


def active_users(conn: Connection, prediction: Any, as_of_ts: int) -> Select:
    """A churn prediction's default audience: users who performed its event (meeting its
    condition) in the window up to `as_of_ts` — only they can stop."""
    from plugin.store.tables import event_types
    query = (select(events.c.user_id.label("id")).distinct()
             .join(event_types, event_types.c.id == events.c.event_type_id)
             .where(events.c.workspace_id == prediction.workspace_id, event_types.c.name == prediction.goal_event,
                    events.c.ts > as_of_ts - prediction.window_days * DAY, events.c.ts <= as_of_ts))
    if prediction.goal_condition:
        query = query.where(goal_condition_sql(conn, prediction.goal_condition))
    return query


def goal_condition_sql(conn: Connection, condition: dict) -> ColumnElement:
    """The goal's property condition on `events.properties`, never NULL and never a cast error:
    a property of the wrong type (or missing) simply does not match."""
    name, op, value = condition["property"], condition["op"], condition["value"]
    if is_postgres(conn):
        return _postgres_condition(name, op, value)
    return _sqlite_condition(name, op, value)


def _sqlite_condition(name: str, op: str, value: Any) -> ColumnElement:
    path = bindparam(None, f'$."{name}"', type_=String)
    kind = func.json_type(events.c.properties, path)
    raw = func.json_extract(events.c.properties, path)
    if op in NUMERIC_OPS:
        number = case((kind.in_(["integer", "real"]), raw))
        return func.coalesce(getattr(number, NUMERIC_OPS[op])(float(value)), False)
    values = value if op == "in" else [value]
    condition = func.coalesce(or_(*[_sqlite_equals(kind, raw, v) for v in values]), False)
    if op == "ne":  # "not equal" needs the property to be there
        return and_(func.coalesce(kind.not_in(["null"]), False), ~condition)
    return condition


def _sqlite_equals(kind, raw, value) -> ColumnElement:
    if isinstance(value, bool):
        return kind == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return and_(kind.in_(["integer", "real"]), raw == value)
    return and_(kind == "text", raw == value)


def _postgres_condition(name: str, op: str, value: Any) -> ColumnElement:
    element = type_coerce(events.c.properties, JSONB)[name]
    if op in NUMERIC_OPS:
        number = case((func.jsonb_typeof(element) == "number", cast(element.astext, Float)))
        return func.coalesce(getattr(number, NUMERIC_OPS[op])(float(value)), False)
    values = value if op == "in" else [value]
    # jsonb equality compares numbers as numbers (20 = 20.0) and strings exactly.
    condition = func.coalesce(or_(*[element == cast(literal(json.dumps(v)), JSONB) for v in values]), False)
    if op == "ne":  # "not equal" needs the property to be there
        return and_(func.coalesce(func.jsonb_typeof(element) != "null", False), ~condition)
    return condition


def describe_condition(condition: dict | None) -> str:
    """Plain words for a goal condition, e.g. 'value > 20'."""
    if not condition:
        return ""
    symbols = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in"}
    return f"{condition['property']} {symbols[condition['op']]} {json.dumps(condition['value'])}"
