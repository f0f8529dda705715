"""Streaming a workspace's users and events into numpy, one chunk of users at a time.

Chunks are consecutive ranges of user ids, so each chunk's events are one range scan of the
(workspace_id, user_id, event_type_id, ts) index, and memory is bounded by the chunk size,
not by the number of users. All chunks are read inside one read transaction (a snapshot),
so events ingested meanwhile cannot make one chunk disagree with another.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from sqlalchemy import Connection, Engine, select

from plugin.predictions import attributes as attribute_features
from plugin.predictions import properties
from plugin.predictions.columns import fetch_arrays
from plugin.predictions.eligibility import eligible_users, goal_condition_sql
from plugin.store import is_postgres, workspace_users
from plugin.store.tables import events, users

TS_BASE = 0                  # 1970-01-01: ingest refuses older events, so ts - TS_BASE fits 32 bits (to 2106)
PACK = 1 << 32               # (user offset, ts offset) travel as one integer
DEFAULT_CHUNK_USERS = 50_000


@dataclass
class Chunk:
    """A range of users: every user of the workspace with an id in it, and their events."""

    user_ids: np.ndarray          # int64, ascending
    attributes: np.ndarray        # (users, attributes) float64, NaN = missing
    event_user: np.ndarray        # per event: index into user_ids
    event_type: np.ndarray        # per event: event_type_id
    event_ts: np.ndarray          # per event: epoch seconds
    goal_user: np.ndarray | None  # goal events meeting the goal's property condition (None: no condition)
    goal_ts: np.ndarray | None
    eligible: np.ndarray | None   # per user, from an audience tree (None: the default rule, see features)
    property_values: list | None = None  # per spec property: (user index, ts, value) arrays


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one consistent state of the store."""
    with engine.connect() as conn:
        if is_postgres(conn):
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def read_chunks(engine: Engine, prediction: Any, spec: dict, cutoff_ts: int, horizon_ts: int,
                chunk_users: int = DEFAULT_CHUNK_USERS, only_user_id: int | None = None) -> Iterator[Chunk]:
    """Chunks of users with their events up to `horizon_ts` (>= `cutoff_ts`, later events are labels).

    `spec` is the model's feature spec (its attribute list and goal event type).
    """
    with snapshot(engine) as conn:
        attribute_exprs = [attribute_features.expression(conn, a).label(f"a{i}")
                           for i, a in enumerate(spec["attributes"])]
        audience = None
        if prediction.audience is not None:
            audience = eligible_users(conn, prediction, cutoff_ts).subquery()
        after = -1
        while True:
            query = select(users.c.id.label("id"), *attribute_exprs)
            if only_user_id is not None:
                query = query.where(users.c.workspace_id == prediction.workspace_id, users.c.id == only_user_id)
            else:
                query = (query.where(workspace_users(conn, prediction.workspace_id), users.c.id > after)
                         .order_by(users.c.id).limit(chunk_users))
            found = fetch_arrays(conn, query, floats=[e.name for e in attribute_exprs])
            if not len(found["id"]):
                return
            order = np.argsort(found["id"], kind="stable")
            user_ids = found["id"][order]
            matrix = np.column_stack([found[e.name][order] for e in attribute_exprs]) if attribute_exprs \
                else np.empty((len(user_ids), 0))
            yield _events_for(conn, prediction, spec, user_ids, matrix, cutoff_ts, horizon_ts, audience)
            if only_user_id is not None or len(user_ids) < chunk_users:
                return
            after = int(user_ids[-1])


def _events_for(conn: Connection, prediction: Any, spec: dict, user_ids: np.ndarray, matrix: np.ndarray,
                cutoff_ts: int, horizon_ts: int, audience) -> Chunk:
    low, high = int(user_ids[0]), int(user_ids[-1])
    if high - low >= PACK // 2:
        # Two billion ids apart within one chunk cannot be packed with a timestamp in 63 bits.
        raise ValueError("user ids in one chunk span more than 2**31; use a smaller chunk size")
    in_range = [events.c.workspace_id == prediction.workspace_id, events.c.user_id >= low,
                events.c.user_id <= high, events.c.ts <= horizon_ts, events.c.ts >= TS_BASE]
    packed = ((events.c.user_id - low) * PACK + (events.c.ts - TS_BASE)).label("packed")
    found = fetch_arrays(conn, select(packed, events.c.event_type_id.label("type")).where(*in_range))
    event_user, event_ts = _unpack(found["packed"], user_ids, low)
    goal_user = goal_ts = None
    if spec.get("goal_condition"):
        goal_user, goal_ts = np.empty(0, np.int64), np.empty(0, np.int64)
        if spec.get("goal_type_id") is not None:
            condition = goal_condition_sql(conn, spec["goal_condition"])
            goals = fetch_arrays(conn, select(packed).where(*in_range, events.c.event_type_id == spec["goal_type_id"],
                                                            condition))
            goal_user, goal_ts = _unpack(goals["packed"], user_ids, low)
    property_values = []
    for p in spec.get("properties", []):
        value = properties.value_expression(conn, p["property"])
        found_values = fetch_arrays(conn, select(packed, value.label("value")).where(
            *in_range, events.c.event_type_id == p["event_type_id"], value.is_not(None)), floats=["value"])
        value_user, value_ts = _unpack(found_values["packed"], user_ids, low)
        known_value = value_user >= 0
        property_values.append((value_user[known_value], value_ts[known_value], found_values["value"][known_value]))
    eligible = None
    if audience is not None:
        ids = fetch_arrays(conn, select(audience.c.id.label("id")).where(audience.c.id >= low, audience.c.id <= high))
        eligible = np.isin(user_ids, ids["id"])
    known = event_user >= 0
    return Chunk(user_ids=user_ids, attributes=matrix, event_user=event_user[known],
                 event_type=found["type"][known], event_ts=event_ts[known],
                 goal_user=None if goal_user is None else goal_user[goal_user >= 0],
                 goal_ts=None if goal_ts is None else goal_ts[goal_user >= 0], eligible=eligible,
                 property_values=property_values)


def _unpack(packed: np.ndarray, user_ids: np.ndarray, low: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed (user offset, ts offset) → (index into user_ids or -1, epoch seconds)."""
    user = packed // PACK + low
    ts = packed % PACK + TS_BASE
    index = np.searchsorted(user_ids, user)
    index = np.minimum(index, len(user_ids) - 1)
    index[user_ids[index] != user] = -1  # a user created after the chunk's user list was read
    return index, ts
