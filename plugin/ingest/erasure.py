"""Erasure's reach beyond the store: what was pushed to a destination must be taken back.

A user synced to an ad audience or a host cohort is there until a sync removes them, and a
sync finds what to remove in `destination_members` — which erasure deletes with the user. So,
before the user's rows go, every destination the user was pushed to gets a queued removal
(`erasure_removals`) with the identifiers the provider matches members on; the destination's
next sync sends it (`plugin.campaigns.syncs`) and deletes it once accepted.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from plugin.store import is_postgres
from plugin.store.tables import destination_members, erasure_removals, segment_destinations, users
from plugin.store.types import utcnow

# The user attributes a destination matches members on (see `plugin.campaigns.channels.member`).
IDENTIFIERS = ("email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "madid")


def queue_removals(conn: Connection, workspace_id: int, user_ids: Sequence[int]) -> int:
    """Queue a removal from every destination these users were pushed to; how many were queued."""
    if not user_ids:
        return 0
    rows = conn.execute(
        select(destination_members.c.destination_id, users.c.external_id, users.c.attributes)
        .join(users, users.c.id == destination_members.c.user_id)
        .join(segment_destinations, segment_destinations.c.id == destination_members.c.destination_id)
        .where(segment_destinations.c.workspace_id == workspace_id, users.c.workspace_id == workspace_id,
               destination_members.c.user_id.in_(list(user_ids)))).all()
    if not rows:
        return 0
    now = utcnow()
    values = [{"workspace_id": workspace_id, "destination_id": r.destination_id, "member_id": r.external_id,
               "identifiers": {k: v for k, v in (r.attributes or {}).items() if k in IDENTIFIERS},
               "created_at": now} for r in rows]
    statement = (pg_insert if is_postgres(conn) else sqlite_insert)(erasure_removals)
    # The same external id erased twice before a sync (re-created in between) is one removal.
    conn.execute(statement.on_conflict_do_update(index_elements=["destination_id", "member_id"],
                                                 set_={"identifiers": statement.excluded.identifiers}), values)
    return len(values)
