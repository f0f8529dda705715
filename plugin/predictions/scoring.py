"""Scoring: every eligible user, as of a moment, with the prediction's current model.

A run streams users in chunks (features → calibrated score), keeping each chunk's scores in
`scoring_run_chunks` (which backtests read later). Only then, in ONE write transaction, are the
prediction's rows in `scores` replaced: readers see the previous run until the commit and the
new run after it, never a mix, and the write lock is held only for the swap. Quantile
categories are resolved here, on the whole run's score distribution.
"""
from __future__ import annotations

import time
from itertools import repeat
from typing import Any, Callable

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select, update

from plugin.errors import Conflict
from plugin.predictions import categories, features, history, models
from plugin.predictions.columns import prefetch
from plugin.predictions.reader import DEFAULT_CHUNK_USERS, read_chunks
from plugin.store import is_postgres, transaction
from plugin.store.tables import erasures, predictions, scores, scoring_run_chunks, scoring_runs, users
from plugin.store.types import utcnow

PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
PG_ROW = np.dtype([("fields", ">i2"), ("l1", ">i4"), ("user_id", ">i8"), ("l2", ">i4"), ("score", ">f8"),
                   ("l3", ">i4"), ("category", ">i2")])


def score(engine: Engine, prediction: Any, as_of_ts: int, chunk_users: int = DEFAULT_CHUNK_USERS,
          progress: Callable[[int], None] | None = None,
          during_swap: Callable[[int], None] | None = None) -> dict:
    """Score and atomically publish; return the run's summary. `during_swap(rows_written)` is
    called inside the swap transaction after each chunk (progress reporting, and tests)."""
    if prediction.status == "archived":
        raise Conflict("an archived prediction is not scored", code="prediction_archived")
    with engine.connect() as conn:
        model = models.current(conn, prediction)
    if model is None:
        raise Conflict(f"prediction {prediction.name!r} has no model yet; train it first", code="no_model")
    started = utcnow()
    with transaction(engine) as conn:
        run_id = conn.execute(insert(scoring_runs).values(
            workspace_id=prediction.workspace_id, prediction_id=prediction.id, model_id=model.id, as_of=as_of_ts,
            window_days=prediction.window_days, status="running", started_at=started, users_scored=0,
            expected_conversions=0.0, histogram=[], categories={}).returning(scoring_runs.c.id)).scalar_one()
    # Seconds per stage; reading overlaps the rest (a prefetch thread), so "waiting" is the
    # part of reading that the computation did not hide.
    timings = dict.fromkeys(("waiting_for_data", "features", "predict", "history", "swap"), 0.0)
    try:
        counts = np.zeros(categories.HUNDREDTHS, dtype=np.int64)
        seq = 0
        chunks = prefetch(read_chunks(engine, prediction, model.spec, as_of_ts, as_of_ts, chunk_users))
        clock = time.perf_counter()
        for chunk in chunks:
            clock = _lap(timings, "waiting_for_data", clock)
            computed = features.compute(chunk, model.spec, as_of_ts)
            keep = computed.has_history if chunk.eligible is None else chunk.eligible
            clock = _lap(timings, "features", clock)
            if keep.any():
                chunk_scores = model.scores(computed.matrix[keep])
                clock = _lap(timings, "predict", clock)
                with transaction(engine) as conn:
                    history.write_chunk(conn, run_id, seq, chunk.user_ids[keep], chunk_scores)
                counts += categories.hundredths_histogram(chunk_scores)
                seq += 1
                clock = _lap(timings, "history", clock)
            if progress:
                progress(len(chunk.user_ids))
            clock = time.perf_counter()
        bounds = categories.resolve_bounds(prediction.categories, counts)
        summary = _summary(counts, bounds)
        clock = time.perf_counter()
        with transaction(engine) as conn:
            _replace_scores(conn, prediction, run_id, model.id, bounds, started, during_swap)
            conn.execute(update(scoring_runs).where(scoring_runs.c.id == run_id).values(
                status="complete", finished_at=utcnow(), users_scored=summary["users_scored"],
                expected_conversions=summary["expected_conversions"], histogram=summary["histogram"],
                categories=summary["categories"]))
            conn.execute(update(predictions).where(predictions.c.id == prediction.id)
                         .values(last_scored_at=utcnow()))
        _lap(timings, "swap", clock)
    except BaseException:
        with transaction(engine) as conn:
            conn.execute(scoring_run_chunks.delete().where(scoring_run_chunks.c.run_id == run_id))
            conn.execute(update(scoring_runs).where(scoring_runs.c.id == run_id)
                         .values(status="failed", finished_at=utcnow()))
        raise
    return {"run_id": run_id, "model_id": model.id, "model_version": model.version, "as_of": as_of_ts, **summary,
            "timings": {k: round(v, 3) for k, v in timings.items()}}


def _lap(timings: dict, stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[stage] += now - since
    return now


def _summary(counts: np.ndarray, bounds: list[dict]) -> dict:
    slots = np.arange(categories.HUNDREDTHS) / 100.0
    per_point = counts[:10_000].reshape(100, 100).sum(axis=1)
    per_point[99] += counts[10_000]  # a score of exactly 100 belongs to the last bin, [99, 100]
    names = categories.assign(slots, bounds)
    per_category = {b["name"]: int(counts[names == b["name"]].sum()) for b in bounds}
    return {"users_scored": int(counts.sum()), "expected_conversions": float(np.dot(counts, slots) / 100.0),
            "histogram": [int(v) for v in per_point],
            "categories": {"bounds": bounds, "users": per_category}}


def _replace_scores(conn: Connection, prediction: Any, run_id: int, model_id: int, bounds: list[dict],
                    started, during_swap: Callable[[int], None] | None) -> None:
    scored_at = int(time.time())
    conn.execute(scores.delete().where(scores.c.prediction_id == prediction.id))
    cursor = conn.connection.driver_connection.cursor()
    names = [b["name"] for b in bounds]
    postgres = is_postgres(conn)
    if postgres:
        cursor.execute("CREATE TEMP TABLE scores_incoming (user_id bigint, score float8, category smallint) "
                       "ON COMMIT DROP")
    written = 0
    for user_ids, chunk_scores in history.read_chunks(conn, run_id):
        labels = categories.assign(chunk_scores, bounds)
        if postgres:
            _copy_postgres(cursor, user_ids, chunk_scores, _category_index(names, labels))
        else:
            cursor.executemany(
                "INSERT INTO scores (workspace_id, prediction_id, user_id, score, category, model_id, scored_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                zip(repeat(prediction.workspace_id), repeat(prediction.id), user_ids.tolist(), chunk_scores.tolist(),
                    labels.tolist(), repeat(model_id), repeat(scored_at)))
        written += len(user_ids)
        if during_swap:
            during_swap(written)
    if postgres:
        cursor.execute("INSERT INTO scores (workspace_id, prediction_id, user_id, score, category, model_id, "
                       "scored_at) SELECT %s, %s, user_id, score, (%s::text[])[category + 1], %s, %s "
                       "FROM scores_incoming", (prediction.workspace_id, prediction.id, names, model_id, scored_at))
    # A user erased while the run computed must not come back through it.
    erased_since = conn.execute(select(func.count()).select_from(erasures).where(
        erasures.c.workspace_id == prediction.workspace_id, erasures.c.requested_at >= started)).scalar_one()
    if erased_since:
        conn.execute(scores.delete().where(scores.c.prediction_id == prediction.id, scores.c.user_id.not_in(
            select(users.c.id).where(users.c.workspace_id == prediction.workspace_id))))


def _copy_postgres(cursor, user_ids: np.ndarray, chunk_scores: np.ndarray, category: np.ndarray) -> None:
    """Binary COPY of fixed-width rows built by numpy (no Python object per row) into the staging table."""
    rows = np.empty(len(user_ids), dtype=PG_ROW)
    rows["fields"], rows["l1"], rows["l2"], rows["l3"] = 3, 8, 8, 2
    rows["user_id"], rows["score"], rows["category"] = user_ids, chunk_scores, category
    with cursor.copy("COPY scores_incoming (user_id, score, category) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(PG_COPY_HEADER + rows.tobytes() + b"\xff\xff")


def _category_index(names: list[str], labels: np.ndarray) -> np.ndarray:
    index = np.zeros(len(labels), dtype=np.int16)
    for i, name in enumerate(names):
        index[labels == name] = i
    return index


def recategorize(conn: Connection, prediction: Any) -> None:
    """Re-band the stored scores under the prediction's (new) scheme, in the caller's transaction."""
    if prediction.categories["type"] == "quantile":
        slot = func.round(scores.c.score * 100)
        rows = conn.execute(select(slot, func.count()).where(scores.c.prediction_id == prediction.id)
                            .group_by(slot)).all()
        counts = np.zeros(categories.HUNDREDTHS, dtype=np.int64)
        for value, n in rows:
            counts[int(np.clip(value, 0, categories.HUNDREDTHS - 1))] += n
        bounds = categories.resolve_bounds(prediction.categories, counts)
    else:
        bounds = categories.resolve_bounds(prediction.categories)
    conn.execute(update(scores).where(scores.c.prediction_id == prediction.id)
                 .values(category=categories.case_expression(scores.c.score, bounds)))
    latest = latest_run(conn, prediction.id)
    if latest is not None:
        used = dict(conn.execute(select(scores.c.category, func.count()).where(scores.c.prediction_id == prediction.id)
                                 .group_by(scores.c.category)).all())
        conn.execute(update(scoring_runs).where(scoring_runs.c.id == latest.id).values(
            categories={"bounds": bounds, "users": {b["name"]: int(used.get(b["name"], 0)) for b in bounds}}))


def latest_run(conn: Connection, prediction_id: int):
    """The latest complete run (the one whose scores are in `scores`), or None."""
    return conn.execute(select(scoring_runs).where(scoring_runs.c.prediction_id == prediction_id,
                                                   scoring_runs.c.status == "complete")
                        .order_by(scoring_runs.c.id.desc()).limit(1)).first()


def run_summary(row) -> dict | None:
    if row is None:
        return None
    return {"run_id": row.id, "model_id": row.model_id, "as_of": row.as_of, "window_days": row.window_days,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "users_scored": row.users_scored, "expected_conversions": row.expected_conversions,
            "histogram": row.histogram, "categories": row.categories}
