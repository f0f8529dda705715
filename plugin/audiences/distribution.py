"""A prediction's score distribution, counted once per scoring run, so that a preview of a
score range or a category costs a few index probes instead of a scan of the range.

The distribution holds, per whole score k (users with k <= score < k + 1) and per category,
the number of users and the sum of their scores. A range is the sum of the whole buckets it
covers plus, at a non-integer bound, an exact index-range query over the partial bucket — so
the figures are exact, not interpolated. Same cache and key as the eligible population: a
scoring run (new `last_scored_at` / model) or an erasure makes the next preview recount.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Integer, Row, cast, func, select

from plugin.audiences.compiler import scores_of
from plugin.audiences.population import Population, PopulationCache, scored_key
from plugin.store.tables import scores

Figures = tuple[int, float]  # users, sum of scores
MAX_SCORE = 100


@dataclass(frozen=True)
class Distribution:
    by_whole_score: dict[int, Figures]
    by_category: dict[str, Figures]

    @property
    def population(self) -> Population:
        users = sum(n for n, _ in self.by_category.values())
        total = sum(s for _, s in self.by_category.values())
        return Population(users, total / 100)


def _whole(conn: Connection) -> ColumnElement:
    if conn.dialect.name == "postgresql":
        return func.floor(scores.c.score)
    # SQLite may lack floor(); CAST truncates toward zero, the same for the 0–100 scores.
    return cast(scores.c.score, Integer)


def distribution(conn: Connection, workspace_id: int, prediction: Row,
                 cache: PopulationCache | None = None) -> Distribution:
    def compute() -> Distribution:
        mine = scores_of(prediction.id, workspace_id)
        whole = _whole(conn)
        buckets = conn.execute(select(whole, func.count(), func.sum(scores.c.score)).where(mine).group_by(whole))
        categories = conn.execute(select(scores.c.category, func.count(), func.sum(scores.c.score))
                                  .where(mine).group_by(scores.c.category))
        return Distribution({int(k): (n, s or 0.0) for k, n, s in buckets},
                            {c: (n, s or 0.0) for c, n, s in categories})
    if cache is None:
        return compute()
    return cache.get(("distribution", *scored_key(conn, prediction)), compute)


def _query(conn: Connection, workspace_id: int, prediction_id: int, *conditions: ColumnElement) -> Figures:
    n, s = conn.execute(select(func.count(), func.sum(scores.c.score))
                        .where(scores_of(prediction_id, workspace_id), *conditions)).one()
    return n, s or 0.0


def leaf_figures(conn: Connection, workspace_id: int, leaf: dict, dist: Distribution) -> Figures:
    """Users and score sum matching one score-range or category filter."""
    if leaf["filter"] == "event_likelihood_category":
        chosen = [dist.by_category.get(name, (0, 0.0)) for name in set(leaf["in"])]
        return sum(n for n, _ in chosen), sum(s for _, s in chosen)
    pid, score = leaf["prediction"], scores.c.score
    low_op = "gt" if "gt" in leaf else "gte" if "gte" in leaf else None
    high_op = "lt" if "lt" in leaf else "lte" if "lte" in leaf else None
    low, high = leaf.get(low_op), leaf.get(high_op)
    above = {"gt": score.__gt__, "gte": score.__ge__, None: None}[low_op]
    below = {"lt": score.__lt__, "lte": score.__le__, None: None}[high_op]
    first = math.ceil(low) if low is not None else 0          # whole buckets [first, last) lie inside
    last = math.floor(high) if high is not None else 101
    if high_op == "lte" and high >= MAX_SCORE:  # bucket 100 holds only 100 itself: no probe needed
        last = MAX_SCORE + 1
    if first >= last:  # the range sits inside one bucket: ask the index directly
        return _query(conn, workspace_id, pid, *[c for c in (above and above(low), below and below(high)) if c is not None])
    n = sum(dist.by_whole_score.get(k, (0, 0.0))[0] for k in range(first, last))
    s = sum(dist.by_whole_score.get(k, (0, 0.0))[1] for k in range(first, last))
    edges, minus = [], []
    if low is not None and low < first:
        edges.append((above(low), score < first))
    elif low_op == "gt":  # an integer `gt`: bucket `first` holds score == low, which is out
        minus.append((score >= low, score <= low))
    if high is not None and last <= MAX_SCORE and (high > last or high_op == "lte"):
        edges.append((score >= last, below(high)))
    for sign, parts in ((1, edges), (-1, minus)):
        for conditions in parts:
            en, es = _query(conn, workspace_id, pid, *conditions)
            n, s = n + sign * en, s + sign * es
    return n, s
