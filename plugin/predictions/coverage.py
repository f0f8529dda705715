"""Does an eligible audience hide the users who convert? Checked when a prediction is defined.

Looking back one window from the workspace's latest event: of the users who performed the goal
in that window ("past converters"), how many would the audience, evaluated at the window's
start, have left out? A recency rule such as "seen in the last 90 days" can leave out half of a
window's buyers (customers coming back after a long pause), and a model cannot score users it
never sees. One SQL count, never a loop over users.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, select

from plugin.predictions.eligibility import DAY, eligible_users, goal_condition_sql
from plugin.store.tables import event_types, events

WARN_SHARE = 0.2  # leaving out at least this share of past converters earns a warning


def past_converters(conn: Connection, prediction: Any, now_ts: int | None = None) -> dict:
    """Past converters and how many of them the prediction's audience leaves out."""
    now_ts = int(time.time()) if now_ts is None else now_ts
    latest = conn.execute(select(func.max(events.c.ts)).where(events.c.workspace_id == prediction.workspace_id,
                                                              events.c.ts <= now_ts)).scalar()
    end = latest if latest is not None else now_ts
    start = end - prediction.window_days * DAY
    goal = (select(events.c.user_id).distinct()
            .join(event_types, event_types.c.id == events.c.event_type_id)
            .where(events.c.workspace_id == prediction.workspace_id, event_types.c.name == prediction.goal_event,
                   events.c.ts > start, events.c.ts <= end))
    if prediction.goal_condition:
        goal = goal.where(goal_condition_sql(conn, prediction.goal_condition))
    converters = goal.subquery()
    eligible = eligible_users(conn, prediction, start).subquery()
    total, kept = conn.execute(select(func.count(), func.count(eligible.c.id))
                               .select_from(converters.outerjoin(eligible, eligible.c.id == converters.c.user_id))
                               ).one()
    return {"window_start": start, "window_end": end, "converters": int(total), "left_out": int(total - kept)}


def audience_warnings(conn: Connection, prediction: Any, now_ts: int | None = None) -> list[dict]:
    """A warning when the audience leaves out a large share of past converters (none otherwise)."""
    if prediction.audience is None or prediction.goal_kind == "churn":
        return []  # the default keeps everyone with history; a churn audience is its active users
    found = past_converters(conn, prediction, now_ts)
    if not found["converters"] or found["left_out"] < WARN_SHARE * found["converters"]:
        return []
    share = found["left_out"] / found["converters"]
    return [{"code": "audience_leaves_out_converters",
             "message": f"the eligible audience leaves out {found['left_out']} of the {found['converters']} users "
                        f"({share:.0%}) who performed {prediction.goal_event} in the last {prediction.window_days} "
                        "days of data; they will never be scored. Widen the audience, or leave it out to score "
                        "every user with any history",
             "details": {**found, "share": round(share, 4)}}]
