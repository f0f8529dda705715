"""Score write-back: each user's score and category written to the host as user attributes.

Only what changed since the last write is sent: `score_writebacks` keeps the last written
(score, category) per (prediction, user). Scores are written as whole numbers (what a
marketer filters on), so a rescoring that moves a score by 0.2 sends nothing. A change of
category also sends a `likelihood_category_changed` event (prediction, old, new). A user's
state is recorded only when everything sent for them was accepted, so failures are retried
by the next write-back.
"""
from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import Connection, Engine, Integer, and_, cast, func, or_, select

import connectors
from connectors import HostEvent, UserAttributes
from plugin.campaigns import channels
from plugin.store import is_postgres, transaction
from plugin.store.tables import predictions, score_writebacks, scores, users

EVENT = "likelihood_category_changed"
PAGE = 10_000


def attribute_names(prediction_name: str) -> tuple[str, str]:
    slug = re.sub(r"[^a-z0-9]+", "_", prediction_name.lower()).strip("_") or "prediction"
    return f"likely_{slug}_score", f"likely_{slug}_category"


def whole(score: float) -> int:
    """Half up, as `_whole_sql` does in both databases (Python's round() is half-to-even)."""
    return int(score + 0.5)


def _whole_sql(conn: Connection):
    if is_postgres(conn):
        return cast(func.floor(scores.c.score + 0.5), Integer)
    return cast(scores.c.score + 0.5, Integer)  # SQLite's CAST truncates; scores are >= 0


def write_back_scores(engine: Engine, workspace_id: int | None = None, prediction_id: int | None = None, *,
                      connector_options: dict | None = None, page: int = PAGE) -> dict[str, int]:
    """Write changed scores of every active prediction to its workspace's host connector."""
    query = select(predictions.c.id, predictions.c.workspace_id, predictions.c.name).where(
        predictions.c.status == "active")
    if workspace_id is not None:
        query = query.where(predictions.c.workspace_id == workspace_id)
    if prediction_id is not None:
        query = query.where(predictions.c.id == prediction_id)
    with engine.connect() as conn:
        targets = conn.execute(query.order_by(predictions.c.id)).all()
    counts = {"predictions": 0, "attributes": 0, "events": 0, "failed": 0, "no_host_connector": 0}
    for target in targets:
        with engine.connect() as conn:
            settings = channels.connector_settings(conn, target.workspace_id)
        try:
            active = connectors.by_channel(connectors.enabled(
                {k: v for k, v in settings.items() if k in connectors.CONNECTORS}, **(connector_options or {})), "host")
        except connectors.ConfigurationError:
            active = {}
        if not active:
            counts["no_host_connector"] += 1
            continue
        host = active[sorted(active)[0]]
        counts["predictions"] += 1
        try:
            _write_prediction(engine, target, host, counts, page)
        finally:
            for connector in active.values():
                connector.close()
    return counts


def _write_prediction(engine: Engine, target: Any, host: Any, counts: dict, page: int) -> None:
    score_name, category_name = attribute_names(target.name)
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(_changed(conn, target, after, page)).all()
        if not rows:
            return
        after = rows[-1].user_id
        attributes, events = [], []
        for r in rows:
            values = {}
            if r.old_score is None or r.old_score != r.new_score:
                values[score_name] = r.new_score
            if r.old_category != r.category:
                values[category_name] = r.category
            # Keys only need to be unique within one call: one attributes object and one event per user.
            attributes.append(UserAttributes(f"a:{r.user_id}", r.external_id, values))
            if r.old_category is not None and r.old_category != r.category:
                events.append(HostEvent(f"e:{r.user_id}", r.external_id, EVENT, {
                    "prediction": target.name, "old": r.old_category, "new": r.category, "score": r.new_score}))
        results = {res.key: res for res in host.update_users(attributes=attributes, events=events)}
        done = [r for r in rows if results.get(f"a:{r.user_id}") and results[f"a:{r.user_id}"].status == "sent"
                and (f"e:{r.user_id}" not in results or results[f"e:{r.user_id}"].status == "sent")]
        counts["attributes"] += sum(1 for a in attributes if results.get(a.key) and results[a.key].status == "sent")
        counts["events"] += sum(1 for e in events if results.get(e.key) and results[e.key].status == "sent")
        counts["failed"] += len(rows) - len(done)
        _remember(engine, target, done)
        if any(res.configuration_error for res in results.values()):
            return


def _changed(conn: Connection, target: Any, after: int, page: int):
    """The next page of scored users whose whole score or category differs from what was written."""
    new_score = _whole_sql(conn).label("new_score")
    w = score_writebacks
    return (select(scores.c.user_id, users.c.external_id, new_score, scores.c.category,
                   w.c.score.label("old_score"), w.c.category.label("old_category"))
            .select_from(scores.join(users, users.c.id == scores.c.user_id)
                         .outerjoin(w, and_(w.c.prediction_id == scores.c.prediction_id,
                                            w.c.user_id == scores.c.user_id)))
            .where(scores.c.prediction_id == target.id, scores.c.workspace_id == target.workspace_id,
                   scores.c.user_id > after,
                   or_(w.c.user_id.is_(None), w.c.score != _whole_sql(conn), w.c.category != scores.c.category))
            .order_by(scores.c.user_id).limit(page))


def _remember(engine: Engine, target: Any, rows: list) -> None:
    if not rows:
        return
    now = int(time.time())
    with transaction(engine) as conn:
        if is_postgres(conn):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(score_writebacks)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["prediction_id", "user_id"],
            set_={"score": statement.excluded.score, "category": statement.excluded.category,
                  "written_ts": statement.excluded.written_ts}),
            [{"workspace_id": target.workspace_id, "prediction_id": target.id, "user_id": r.user_id,
              "score": r.new_score, "category": r.category, "written_ts": now} for r in rows])

