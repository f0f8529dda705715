"""The data check before a prediction is saved, as Braze's prediction wizard does it.

Over the most recent window of the prediction's length — cutoff T = now − window, then (T, now]
— it counts the users the prediction would find eligible at T and, among them, the past
converters (the goal event, meeting its condition, within the window) and non-converters:
exactly what a training as of now would learn from. Two set-based COUNTs, no loop over users.

A goal event the workspace has never seen is refused (400 `unknown_goal_event`): such a
prediction could never train, and an active one would hold a slot. Too few converters or
non-converters give a warning (`not_enough_data`, with the counts and the minimums): the events
may still be arriving, and the first training reports the refusal with its counts if so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

from sqlalchemy import Connection, func, select

from plugin.errors import ValidationFailed
from plugin.predictions.eligibility import DAY, eligible_users, goal_condition_sql
from plugin.store.tables import event_types, events

MAX_SUGGESTIONS = 20


@dataclass(frozen=True)
class DataCheck:
    """What the recent data holds for a definition."""

    window_days: int
    cutoff: int                      # epoch seconds: eligibility as of here
    as_of: int                       # converters in (cutoff, as_of]
    eligible_users: int
    past_converters: int
    non_converters: int
    min_positives: int
    min_negatives: int
    warnings: list[dict] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        return self.past_converters >= self.min_positives and self.non_converters >= self.min_negatives

    def as_dict(self) -> dict:
        return {**asdict(self), "enough": self.enough}


def goal_event_type(conn: Connection, workspace_id: int, goal_event: str) -> int:
    """The goal's event type id; 400 `unknown_goal_event` (naming some known events) if never seen."""
    found = conn.execute(select(event_types.c.id).where(event_types.c.workspace_id == workspace_id,
                                                        event_types.c.name == goal_event)).scalar()
    if found is not None:
        return found
    known = list(conn.execute(select(event_types.c.name).where(event_types.c.workspace_id == workspace_id)
                              .order_by(event_types.c.name).limit(MAX_SUGGESTIONS)).scalars())
    raise ValidationFailed(
        f"the goal event {goal_event!r} has never been received in this workspace: a prediction of it "
        "could never be trained", code="unknown_goal_event",
        details={"goal_event": [f"No {goal_event!r} event has been received; send events first or pick "
                                "one the workspace has."], "known_events": known})


def check(conn: Connection, workspace_id: int, definition: dict, now_ts: int,
          min_positives: int, min_negatives: int) -> DataCheck:
    """Count the recent window for a validated definition (see schemas.PredictionSchema)."""
    goal_type = goal_event_type(conn, workspace_id, definition["goal_event"])
    window = definition["window_days"]
    cutoff = now_ts - window * DAY
    audience = SimpleNamespace(workspace_id=workspace_id, audience=definition.get("audience"))
    eligible = eligible_users(conn, audience, cutoff).subquery()
    converted = (select(events.c.user_id).where(
        events.c.workspace_id == workspace_id, events.c.event_type_id == goal_type,
        events.c.ts > cutoff, events.c.ts <= now_ts, events.c.user_id.in_(select(eligible.c.id))))
    if definition.get("goal_condition"):
        converted = converted.where(goal_condition_sql(conn, definition["goal_condition"]))
    eligible_count = conn.execute(select(func.count()).select_from(eligible)).scalar_one()
    converters = conn.execute(select(func.count()).select_from(converted.distinct().subquery())).scalar_one()
    result = DataCheck(window_days=window, cutoff=cutoff, as_of=now_ts, eligible_users=int(eligible_count),
                       past_converters=int(converters), non_converters=int(eligible_count - converters),
                       min_positives=min_positives, min_negatives=min_negatives)
    if not result.enough:
        result.warnings.append({
            "code": "not_enough_data",
            "message": f"in the last {window} days, {result.past_converters} of {result.eligible_users} eligible "
                       f"users performed {definition['goal_event']} and {result.non_converters} did not; "
                       f"training needs at least {min_positives} and {min_negatives}: the first training will be "
                       "refused unless more data arrives"})
    return result



def create_checked(conn: Connection, workspace_id: int, data: dict, settings: dict, now_ts: int) -> tuple:
    """Check the data, then save the definition (which queues its first training): (prediction, check).

    The one path of the API, the CLI and the page; a refused check saves nothing.
    """
    from plugin.predictions import definitions
    result = check(conn, workspace_id, data, now_ts, settings["min_positives"], settings["min_negatives"])
    return definitions.create(conn, workspace_id, data, settings["max_active_predictions"]), result


RECENT_DAYS = 90
MAX_EVENTS_LISTED = 200


def recent_event_counts(conn: Connection, workspace_id: int, now_ts: int) -> list[dict]:
    """The workspace's event types with their events in the last 90 days, most frequent first:
    what a creation form offers as goals. One grouped range scan of the (type, ts) index."""
    counted = (select(events.c.event_type_id, func.count().label("events"))
               .where(events.c.workspace_id == workspace_id, events.c.ts > now_ts - RECENT_DAYS * DAY,
                      events.c.ts <= now_ts)
               .group_by(events.c.event_type_id).subquery())
    rows = conn.execute(
        select(event_types.c.name, func.coalesce(counted.c.events, 0).label("events"))
        .select_from(event_types.outerjoin(counted, counted.c.event_type_id == event_types.c.id))
        .where(event_types.c.workspace_id == workspace_id)
        .order_by(func.coalesce(counted.c.events, 0).desc(), event_types.c.name).limit(MAX_EVENTS_LISTED))
    return [{"name": row.name, "events": int(row.events)} for row in rows]
