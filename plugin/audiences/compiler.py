"""Audience tree → one SQLAlchemy Core SELECT of user ids, run wholly by the database.

Two shapes:
- A tree of score/category conditions on one prediction (no `not`) reads only `scores`:
  a range is an index range on (prediction_id, score), so counting it is index-only.
- Anything else is `SELECT users.id FROM users WHERE workspace_id = :w AND <condition>`.
  Attribute and reachability filters are JSON conditions on the user's row, each made
  definite (never NULL) so that `not` is the plain complement. Score, category and behaviour
  filters are membership tests written per backend: `users.id IN (subquery)` on SQLite, whose
  planner then drives the query from the (prediction_id, score) index; a correlated EXISTS on
  PostgreSQL, which becomes a semi/anti-join anywhere, where `NOT IN` or IN under OR would
  fall back to a per-row scan of the subquery once it outgrows work_mem.
"""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, Select, and_, func, literal, not_, or_, select

from plugin.audiences.jsonsql import AttributeAccess, PerDialect, per_dialect
from plugin.audiences.jsonsql import definite as _definite
from plugin.audiences.schema import PREDICTION_FILTERS, parse_tree
from plugin.errors import ValidationFailed
from plugin.store.tables import event_types, events, predictions, scores, users

DAY = 86_400


def parse_definition(tree: Any) -> dict:
    """parse_tree, raising the API's 400 with the paths under `definition`."""
    try:
        return parse_tree(tree)
    except ValidationError as error:
        raise ValidationFailed("the audience definition is not valid",
                               details={"definition": error.messages}) from None


def compile_audience(tree: dict, workspace_id: int, now_ts: int) -> Select:
    """One SELECT whose single column `id` is the id of every user in the audience.

    `now_ts` (epoch seconds) anchors "within the last d days"; events after it are not counted,
    so a past cutoff gives the audience as of then (attributes are always current).
    """
    node = parse_definition(tree)
    scored = score_only(node)
    if scored is not None:
        prediction_id, condition = scored
        return select(scores.c.user_id.label("id")).where(scores_of(prediction_id, workspace_id), condition)
    return select(users.c.id).where(users.c.workspace_id == workspace_id,
                                    _condition(node, workspace_id, now_ts))


def score_only(node: dict) -> tuple[int, ColumnElement] | None:
    """(prediction, condition on `scores` rows) when the tree needs nothing but one prediction's scores."""
    if "filter" in node:
        if node["filter"] not in PREDICTION_FILTERS:
            return None
        return node["prediction"], _score_row_condition(node)
    if "not" in node:
        return None  # `not` includes users without a score, who have no row in `scores`
    kind = "all" if "all" in node else "any"
    parts = [score_only(child) for child in node[kind]]
    if any(p is None for p in parts) or len({p[0] for p in parts}) != 1:
        return None
    join = and_ if kind == "all" else or_
    return parts[0][0], join(*(p[1] for p in parts))


def _score_row_condition(leaf: dict) -> ColumnElement:
    if leaf["filter"] == "event_likelihood_category":
        return scores.c.category.in_(leaf["in"])
    bounds = {"gt": scores.c.score.__gt__, "gte": scores.c.score.__ge__,
              "lt": scores.c.score.__lt__, "lte": scores.c.score.__le__}
    return and_(*(bounds[op](literal(float(leaf[op]))) for op in bounds if op in leaf))


def scores_of(prediction_id: int, workspace_id: int) -> ColumnElement:
    """`scores.prediction_id = (the prediction, if it is the workspace's)`.

    A prediction of another workspace matches nobody, even for callers that skipped
    validation. As a scalar subquery it is the index seek key, computed once before the
    range scan; an EXISTS beside it would be re-checked on every scanned row.
    """
    owned = (select(predictions.c.id)
             .where(predictions.c.id == prediction_id, predictions.c.workspace_id == workspace_id)
             .scalar_subquery())
    return scores.c.prediction_id == owned


def _condition(node: dict, workspace_id: int, now_ts: int) -> ColumnElement:
    if "not" in node:
        return not_(_condition(node["not"], workspace_id, now_ts))
    if "filter" in node:
        return LEAF_CONDITIONS[node["filter"]](node, workspace_id, now_ts)
    kind, join = ("all", and_) if "all" in node else ("any", or_)
    # Score/category leaves of one prediction share one membership test: a user has one score
    # row per prediction, so the intersection (union) of their sets is the AND (OR) of the rows.
    by_prediction: dict[int, list[ColumnElement]] = {}
    others = []
    for child in node[kind]:
        if child.get("filter") in PREDICTION_FILTERS:
            by_prediction.setdefault(child["prediction"], []).append(_score_row_condition(child))
        else:
            others.append(_condition(child, workspace_id, now_ts))
    scored = [_scored(pid, workspace_id, join(*conditions)) for pid, conditions in by_prediction.items()]
    return join(*scored, *others)


def _membership(ids: Select, correlated: Select) -> ColumnElement:
    """`users.id IN (ids)` on SQLite; EXISTS (correlated) on PostgreSQL."""
    return PerDialect.of(lambda: users.c.id.in_(ids), correlated.exists)


def _scored(prediction_id: int, workspace_id: int, condition: ColumnElement) -> ColumnElement:
    """Users whose score row for the prediction satisfies `condition`."""
    rows = select(scores.c.user_id).where(scores_of(prediction_id, workspace_id), condition)
    return _membership(rows, rows.where(scores.c.user_id == users.c.id))


def _prediction_leaf(leaf: dict, workspace_id: int, _now: int) -> ColumnElement:
    return _scored(leaf["prediction"], workspace_id, _score_row_condition(leaf))


def _performed(leaf: dict, workspace_id: int, now_ts: int) -> ColumnElement:
    type_id = (select(event_types.c.id)
               .where(event_types.c.workspace_id == workspace_id, event_types.c.name == leaf["event"])
               .scalar_subquery())
    performers = select(events.c.user_id).where(
        events.c.workspace_id == workspace_id, events.c.event_type_id == type_id, events.c.ts <= now_ts)
    if leaf["within_days"] is not None:
        performers = performers.where(events.c.ts >= now_ts - leaf["within_days"] * DAY)
    own = performers.with_only_columns(literal(1)).where(events.c.user_id == users.c.id)
    if leaf["min_count"] > 1:
        performers = performers.group_by(events.c.user_id).having(func.count() >= leaf["min_count"])
        own = own.having(func.count() >= leaf["min_count"])  # one group: this user's events
    condition = _membership(performers, own)
    return not_(condition) if leaf["filter"] == "not_performed" else condition


def _attribute(leaf: dict, _workspace_id: int, _now: int) -> ColumnElement:
    name, op, value = leaf["name"], leaf["op"], leaf.get("value")

    def build(make: type[AttributeAccess]) -> ColumnElement:
        a = make(name)
        if op == "eq":
            return a.equals(value)
        if op == "ne":  # a present scalar that differs; missing never matches
            return and_(a.is_scalar(), not_(_definite(a.equals(value))))
        if op == "in":
            return a.one_of(value)
        if op == "not_in":
            return and_(a.is_scalar(), not_(_definite(a.one_of(value))))
        if op == "exists":
            return a.present()
        if op == "not_exists":
            return not_(_definite(a.present()))
        if op == "contains":
            in_list = a.list_has(value)
            return or_(_definite(a.has_substring(value)), in_list) if isinstance(value, str) else in_list
        return a.compare(op, value)
    return per_dialect(build)


def _reachable(leaf: dict, _workspace_id: int, _now: int) -> ColumnElement:
    channel = leaf["channel"]

    def build(make: type[AttributeAccess]) -> ColumnElement:
        def allowed(consent: str) -> ColumnElement:  # consent given unless explicitly false
            return not_(_definite(make(consent).is_false()))
        subscribed = not_(_definite(make("unsubscribed").is_true()))
        if channel == "email":
            address = make("email").nonempty_string()
            return and_(_definite(address), allowed("email_consent"), subscribed)
        if channel == "push":
            return and_(_definite(make("push_tokens").nonempty_list()), allowed("push_consent"), subscribed)
        if channel == "in_app":
            return and_(allowed("in_app_consent"), subscribed)
        address = or_(_definite(make("email").nonempty_string()), _definite(make("phone").nonempty_string()))
        return and_(address, allowed("ads_consent"), subscribed)
    return per_dialect(build)


LEAF_CONDITIONS = {
    "event_likelihood_score": _prediction_leaf,
    "event_likelihood_category": _prediction_leaf,
    "performed": _performed,
    "not_performed": _performed,
    "attribute": _attribute,
    "reachable": _reachable,
}
