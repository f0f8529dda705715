"""Audience preview: how many users a definition targets and what they are expected to do.

The size and the expected conversions come from one query over the live scores — or, for a
single score-range or category filter (the slider), from the prediction's cached distribution
and exact edge probes; the eligible-audience denominator from the same cache; recall,
precision and false-positive rate from the model's held-out test set (`threshold_curve`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from plugin.audiences import population
from plugin.audiences.compiler import compile_audience, score_only, scores_of
from plugin.audiences.distribution import Distribution, distribution, leaf_figures
from plugin.audiences.holdout import holdout_targeting, score_range_leaf
from plugin.audiences.population import Population, PopulationCache
from plugin.audiences.schema import PREDICTION_FILTERS
from plugin.audiences.targeting import check_targetable, load_predictions
from plugin.store.tables import prediction_models, scores, users


def anchor_prediction(node: dict) -> int | None:
    """The prediction every member must be scored by, if any: then its scored users are the
    eligible audience. A `not` or an `any` mixing other filters can reach unscored users."""
    if "filter" in node:
        return node["prediction"] if node["filter"] in PREDICTION_FILTERS else None
    if "all" in node:
        return next((p for p in map(anchor_prediction, node["all"]) if p is not None), None)
    if "any" in node:
        anchors = {anchor_prediction(child) for child in node["any"]}
        return anchors.pop() if len(anchors) == 1 and None not in anchors else None
    return None


def _counts(conn: Connection, workspace_id: int, node: dict, ids: list[int], now_ts: int,
            dists: dict[int, Distribution]) -> tuple[int, dict[int, float]]:
    """Audience size and the sum of scores per referenced prediction."""
    if node.get("filter") in PREDICTION_FILTERS:
        # The marketer's slider: read off the cached distribution plus exact edge probes.
        size, total = leaf_figures(conn, workspace_id, node, dists[node["prediction"]])
        return size, {node["prediction"]: total}
    scored = score_only(node)
    if scored is not None:
        # Only one prediction's rows: count and sum straight off the (prediction_id, score) index.
        pid, condition = scored
        size, total = conn.execute(select(func.count(), func.sum(scores.c.score))
                                   .where(scores_of(pid, workspace_id), condition)).one()
        return size, {pid: total or 0.0}
    audience = compile_audience(node, workspace_id, now_ts).subquery("audience")
    source, sums = audience, []
    for i, pid in enumerate(ids):
        s = scores.alias(f"s{i}")
        source = source.outerjoin(s, and_(s.c.prediction_id == pid, s.c.user_id == audience.c.id))
        sums.append(func.sum(s.c.score))
    row = conn.execute(select(func.count(), *sums).select_from(source)).one()
    return row[0], {pid: row[i + 1] or 0.0 for i, pid in enumerate(ids)}


def sample_members(conn: Connection, workspace_id: int, node: dict, prediction_id: int | None,
                   now_ts: int, limit: int) -> list[dict]:
    """A few members, highest score first when the tree uses a prediction."""
    audience = compile_audience(node, workspace_id, now_ts).subquery("audience")
    source = audience.join(users, users.c.id == audience.c.id)
    if prediction_id is None:
        rows = conn.execute(select(users.c.external_id).select_from(source)
                            .order_by(users.c.id).limit(limit))
        return [{"user_id": r.external_id} for r in rows]
    source = source.outerjoin(scores, and_(scores.c.prediction_id == prediction_id,
                                           scores.c.user_id == audience.c.id))
    rows = conn.execute(select(users.c.external_id, scores.c.score, scores.c.category).select_from(source)
                        .order_by(scores.c.score.desc().nulls_last(), users.c.id).limit(limit))
    return [{"user_id": r.external_id, "prediction_id": prediction_id,
             "score": None if r.score is None else round(r.score, 2), "category": r.category}
            for r in rows]


def preview(conn: Connection, workspace_id: int, node: dict, now_ts: int, sample: int = 0,
            cache: PopulationCache | None = None, targeting_only: bool = True) -> dict[str, Any]:
    """The preview figures of a parsed tree; refuses untargetable predictions (403/409).

    `targeting_only=False` is for analytics (the prediction page of a demo or preview
    prediction): the same figures, without the targetability check.
    """
    found = (check_targetable if targeting_only else load_predictions)(conn, workspace_id, node)
    ids = list(found)
    dists = {pid: distribution(conn, workspace_id, found[pid], cache) for pid in ids}
    size, sums = _counts(conn, workspace_id, node, ids, now_ts, dists)
    anchor = anchor_prediction(node)
    if anchor is not None:
        eligible = dists[anchor].population
        basis = {"basis": "scored_population", "prediction_id": anchor}
    else:
        eligible = population.all_users(conn, workspace_id, cache)
        basis = {"basis": "all_users"}
    per_prediction = [_prediction_figures(found[pid], sums[pid], dists[pid].population) for pid in ids]
    targeting = _targeting(conn, node, found, cache)
    result = {
        "size": size,
        "eligible": {**basis, "size": eligible.users},
        "share": _ratio(size, eligible.users),
        "predictions": per_prediction,
        "targeting": targeting,
        "summary": summary(size, _ratio(size, eligible.users), anchor is not None,
                           per_prediction[ids.index(anchor if anchor is not None else ids[0])] if ids else None),
    }
    if sample:
        primary = anchor if anchor is not None else (ids[0] if ids else None)
        result["sample"] = sample_members(conn, workspace_id, node, primary, now_ts, sample)
    return result


def _prediction_figures(prediction: Row, score_sum: float, total: Population) -> dict[str, Any]:
    expected = score_sum / 100
    return {"prediction_id": prediction.id, "name": prediction.name, "goal_event": prediction.goal_event,
            "window_days": prediction.window_days, "scored_users": total.users,
            "expected_conversions": round(expected, 2),
            "expected_conversions_total": round(total.expected or 0.0, 2),
            "expected_share": _ratio(expected, total.expected or 0.0)}


def _model_metrics(conn: Connection, model_id: int, cache: PopulationCache | None) -> Any:
    """A model's stored metrics (its test-set curve). A model row is never changed once
    written, so its id alone is the cache key."""
    def read() -> Any:
        return conn.execute(select(prediction_models.c.metrics)
                            .where(prediction_models.c.id == model_id)).scalar()
    return read() if cache is None else cache.get(("model_metrics", model_id), read)


def _targeting(conn: Connection, node: dict, found: dict[int, Row],
               cache: PopulationCache | None = None) -> dict | None:
    located = score_range_leaf(node)
    if located is None:
        return None
    leaf, layered = located
    prediction = found[leaf["prediction"]]
    if prediction.current_model_id is None:
        return None
    figures = holdout_targeting(_model_metrics(conn, prediction.current_model_id, cache), leaf)
    if figures is None:
        return None
    return {"prediction_id": prediction.id, "model_id": prediction.current_model_id,
            **figures, "other_filters_ignored": layered}


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def percent(ratio: float) -> str:
    """8 %, 0.4 %, 99.6 %, < 0.1 %: whole percents except where rounding would say 0 or 100."""
    value = ratio * 100
    if 0 < value < 0.1:
        return "< 0.1 %"
    if 0 < value < 1 or 99 < value < 100:
        return f"{value:.1f} %"
    return f"{round(value)} %"


def goal_verb(goal_event: str) -> str:
    """`purchase`, or `perform 'add_to_cart'`: the goal as the verb of a sentence."""
    return goal_event if goal_event.isalpha() else f"perform {goal_event!r}"


def summary(size: int, share: float | None, scored_basis: bool, figures: dict | None) -> str:
    """One sentence a marketer can read at a glance."""
    people = f"{size:,} user{'' if size == 1 else 's'}"
    text = f"Targets {people}"
    if share is not None:
        text += f" ({percent(share)} of {'the eligible audience' if scored_basis else 'all users'})"
    if figures is None or not figures["scored_users"]:
        return text + "."
    verb = goal_verb(figures["goal_event"])
    days = figures["window_days"]
    text += (f"; about {round(figures['expected_conversions']):,} "
             f"{'is' if round(figures['expected_conversions']) == 1 else 'are'} expected to {verb} "
             f"within {days} day{'' if days == 1 else 's'}")
    if figures["expected_share"] is not None:
        text += f", {percent(figures['expected_share'])} of all expected conversions"
    return text + "."
