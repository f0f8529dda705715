"""Point-in-time features and labels, computed per chunk with numpy (never a loop over users).

As of a cutoff T, a user's features only see events with ts <= T:
- events of each frequent event type in the last 1, 7, 30 and 90 days ((T - d days, T]);
- for a goal with a property condition, the matching goal events over the same windows;
- days since the last event, the first event (tenure) and the last goal event; events ever;
  active days in the last 30 and 90 days; mean and longest gap between events (days);
- sums, means and last values of numeric event properties (see `properties`);
- user attributes, as they are now (see `attributes`).
The label is whether a goal event (meeting its condition) happened in (T, T + window] — or, for a
churn goal, whether it did NOT, among the users who performed it in the window up to T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from plugin.predictions import attributes as attribute_features
from plugin.predictions import properties as property_features
from plugin.predictions.eligibility import DAY, DEFAULT_LOOKBACK_DAYS, describe_condition
from plugin.predictions.reader import TS_BASE, Chunk
from plugin.store.tables import event_types, events

WINDOWS = (1, 7, 30, 90)
MAX_EVENT_TYPES = 30
SPEC_VERSION = 2  # 2: numeric event properties
ACTIVITY = [("days_since_last_event", "days since the last event"),
            ("days_since_first_event", "days since the first event"),
            ("days_since_last_goal", "days since the last {goal}"),
            ("events_total", "events ever"),
            ("active_days_30", "active days in the last 30 days"),
            ("active_days_90", "active days in the last 90 days"),
            ("gap_mean_days", "average days between events"),
            ("gap_max_days", "longest gap between events (days)")]


@dataclass
class ChunkFeatures:
    matrix: np.ndarray          # (users, features) float32, NaN = missing
    has_history: np.ndarray     # any event up to the cutoff: the default eligibility
    labels: np.ndarray | None   # goal in (cutoff, label_end], when a label end was given


def build_spec(conn: Connection, prediction: Any, cutoff_ts: int) -> dict:
    """The feature list for a new model: the event types most frequent in the 90 days before
    the cutoff (never later), the goal, and the attributes worth using."""
    workspace_id = prediction.workspace_id
    counts = conn.execute(
        select(events.c.event_type_id, func.count().label("n"))
        .where(events.c.workspace_id == workspace_id, events.c.ts > cutoff_ts - DEFAULT_LOOKBACK_DAYS * DAY,
               events.c.ts <= cutoff_ts)
        .group_by(events.c.event_type_id).order_by(func.count().desc(), events.c.event_type_id)
        .limit(MAX_EVENT_TYPES)).all()
    names = dict(conn.execute(select(event_types.c.id, event_types.c.name)
                              .where(event_types.c.workspace_id == workspace_id)).all())
    goal_type_id = next((i for i, n in names.items() if n == prediction.goal_event), None)
    chosen = [row.event_type_id for row in counts if row.event_type_id in names]
    if goal_type_id is not None and goal_type_id not in chosen:
        chosen.append(goal_type_id)
    since = cutoff_ts - DEFAULT_LOOKBACK_DAYS * DAY
    return {"version": SPEC_VERSION, "windows": list(WINDOWS),
            "event_types": [{"id": i, "name": names[i]} for i in sorted(chosen)],
            "properties": property_features.discover(conn, workspace_id, {i: names[i] for i in chosen}, since,
                                                     cutoff_ts),
            "goal_event": prediction.goal_event, "goal_type_id": goal_type_id,
            "goal_kind": getattr(prediction, "goal_kind", "event"), "window_days": prediction.window_days,
            "goal_condition": prediction.goal_condition,
            "attributes": attribute_features.discover(conn, workspace_id)}


def columns(spec: dict) -> list[dict]:
    """Every feature's key and plain-language label, in matrix order."""
    out = []
    for event_type in spec["event_types"]:
        for w in spec["windows"]:
            out.append({"key": f"events:{event_type['id']}:{w}d",
                        "label": f"{event_type['name']} events in the last {_days(w)}"})
    if spec.get("goal_condition"):
        goal = f"{spec['goal_event']} events with {describe_condition(spec['goal_condition'])}"
        out.extend({"key": f"goal_events:{w}d", "label": f"{goal} in the last {_days(w)}"} for w in spec["windows"])
    goal_name = spec["goal_event"] + (f" ({describe_condition(spec['goal_condition'])})"
                                      if spec.get("goal_condition") else "")
    out.extend({"key": key, "label": label.format(goal=goal_name)} for key, label in ACTIVITY)
    out.extend(property_features.columns(spec))
    out.extend({"key": f"attribute:{a['name']}", "label": a["label"]} for a in spec["attributes"])
    return out


def categorical_indices(spec: dict) -> list[int]:
    start = len(columns(spec)) - len(spec["attributes"])
    return [start + i for i, a in enumerate(spec["attributes"]) if a["kind"] == "categorical"]


def _days(w: int) -> str:
    return "day" if w == 1 else f"{w} days"


def compute(chunk: Chunk, spec: dict, cutoff_ts: int, label_end_ts: int | None = None) -> ChunkFeatures:
    """Features as of `cutoff_ts` for every user of the chunk (and labels up to `label_end_ts`)."""
    n = len(chunk.user_ids)
    past = chunk.event_ts <= cutoff_ts  # the only events a feature may see
    user, etype, ts = chunk.event_user[past], chunk.event_type[past], chunk.event_ts[past]
    age = cutoff_ts - ts
    blocks = [_type_counts(user, etype, age, spec, n)]

    if spec.get("goal_condition"):
        goal_user, goal_ts = chunk.goal_user, chunk.goal_ts
    elif spec.get("goal_type_id") is not None:
        is_goal = chunk.event_type == spec["goal_type_id"]
        goal_user, goal_ts = chunk.event_user[is_goal], chunk.event_ts[is_goal]
    else:
        goal_user, goal_ts = np.empty(0, np.int64), np.empty(0, np.int64)
    goal_past = goal_ts <= cutoff_ts
    if spec.get("goal_condition"):
        goal_age = cutoff_ts - goal_ts[goal_past]
        blocks.append(np.column_stack([np.bincount(goal_user[goal_past][goal_age < w * DAY], minlength=n)
                                       for w in spec["windows"]]))

    activity, last_ts = _activity(user, ts, cutoff_ts, n)
    last_goal = np.full(n, -np.inf)
    np.maximum.at(last_goal, goal_user[goal_past], goal_ts[goal_past].astype(np.float64))
    activity[:, 2] = (cutoff_ts - last_goal) / DAY  # inf (never) becomes NaN below
    blocks.append(activity)
    blocks.append(property_features.compute(spec, chunk.property_values or [], cutoff_ts, n))
    blocks.append(chunk.attributes)
    matrix = np.hstack([b.astype(np.float32, copy=False) for b in blocks]) if n else \
        np.empty((0, len(columns(spec))), np.float32)
    matrix[np.isinf(matrix)] = np.nan

    labels = None
    churn = spec.get("goal_kind") == "churn"
    if label_end_ts is not None:
        future = (goal_ts > cutoff_ts) & (goal_ts <= label_end_ts)
        labels = np.zeros(n, dtype=np.int8)
        labels[goal_user[future]] = 1
        if churn:
            labels = 1 - labels  # churned: did NOT perform the event in the window
    has_history = np.isfinite(last_ts)
    if churn:
        # Only active users can churn: those who performed the event in the window up to the cutoff.
        has_history = (cutoff_ts - last_goal) < spec["window_days"] * DAY
    return ChunkFeatures(matrix=matrix, has_history=has_history, labels=labels)


def _type_counts(user: np.ndarray, etype: np.ndarray, age: np.ndarray, spec: dict, n: int) -> np.ndarray:
    type_ids = np.array([t["id"] for t in spec["event_types"]], dtype=np.int64)
    k = len(type_ids)
    if k == 0:
        return np.empty((n, 0))
    position = np.minimum(np.searchsorted(type_ids, etype), k - 1)
    known = type_ids[position] == etype
    out = np.empty((n, k, len(spec["windows"])))
    for j, w in enumerate(spec["windows"]):
        m = known & (age < w * DAY)
        out[:, :, j] = np.bincount(user[m] * k + position[m], minlength=n * k).reshape(n, k)
    return out.reshape(n, k * len(spec["windows"]))  # type-major, window-minor: matches `columns`


def _activity(user: np.ndarray, ts: np.ndarray, cutoff_ts: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Recency, tenure, activity and gaps; one sort of the chunk's (user, ts) pairs."""
    key = np.sort(user.astype(np.int64) * (1 << 32) + (ts - TS_BASE))
    su = key >> 32
    sts = (key & 0xFFFFFFFF) + TS_BASE
    total = np.bincount(su, minlength=n)
    has = total > 0
    ends = np.cumsum(total)
    starts = ends - total
    first = np.full(n, np.nan)
    last = np.full(n, -np.inf)
    if len(sts):
        first[has] = sts[starts[has]]
        last[has] = sts[ends[has] - 1]
    gap_max = np.full(n, np.nan)
    if len(sts) > 1:
        same = su[1:] == su[:-1]
        gaps = np.zeros(n)
        np.maximum.at(gaps, su[1:][same], (sts[1:] - sts[:-1])[same].astype(np.float64))
        gap_max = np.where(total >= 2, gaps / DAY, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_mean = np.where(total >= 2, (last - first) / np.maximum(total - 1, 1) / DAY, np.nan)
    day = (cutoff_ts - sts) // DAY
    active = []
    for window in (30, 90):
        m = day < window
        u, d = su[m], day[m]
        new = np.ones(len(u), dtype=bool)
        new[1:] = (u[1:] != u[:-1]) | (d[1:] != d[:-1])  # within a user, days only decrease
        active.append(np.bincount(u[new], minlength=n))
    activity = np.column_stack([(cutoff_ts - last) / DAY, (cutoff_ts - first) / DAY, np.full(n, np.nan),
                                total, active[0], active[1], gap_mean, gap_max])
    return activity, last
