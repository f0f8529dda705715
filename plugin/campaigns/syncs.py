"""Segment syncs to destinations (host cohorts, Meta, Google), by difference.

Each destination keeps the membership last pushed to it (`destination_members`). A sync
compares that with the segment's current snapshot and sends only the difference: adds, and —
in `mirror` mode — removes (`additive` never removes). A member is recorded as pushed only
when the provider accepted it, so whatever failed is simply part of the next sync's
difference. Every sync leaves a row in `segment_syncs`.

Erased users are removed in every mode, first: erasure queues them in `erasure_removals`
(`plugin.ingest.erasure`) and a sync sends those before anything else, even for a segment
deleted since; a removal stays queued until the provider accepted it.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, insert, select, true, update

import connectors
from plugin.audiences.segments import get_segment, members_at
from plugin.campaigns import channels
from plugin.engagement import unsubscribes
from plugin.errors import Conflict, NotFound, ValidationFailed
from plugin.store import transaction
from plugin.store.tables import (
    destination_members,
    erasure_removals,
    segment_destinations,
    segment_members,
    segment_syncs,
    users,
)
from plugin.store.types import utcnow

MODES = ("mirror", "additive")
PAGE = 10_000


def attach(engine: Engine, workspace_id: int, segment_id: int, connector: str, audience_id: str,
           mode: str = "mirror") -> dict:
    cls = connectors.CONNECTORS.get(connector)
    if cls is None or not issubclass(cls, connectors.AudienceConnector):
        names = sorted(n for n, c in connectors.CONNECTORS.items() if issubclass(c, connectors.AudienceConnector))
        raise ValidationFailed("not an audience destination", code="invalid_connector",
                               details={"connector": [f"One of: {', '.join(names)}."]})
    with transaction(engine) as conn:
        get_segment(conn, workspace_id, segment_id)
        found = conn.execute(select(segment_destinations.c.id).where(
            segment_destinations.c.segment_id == segment_id, segment_destinations.c.connector == connector,
            segment_destinations.c.audience_id == audience_id)).scalar()
        if found:
            raise Conflict("this segment already syncs to that audience", code="destination_exists",
                           details={"destination_id": found})
        destination_id = conn.execute(insert(segment_destinations).values(
            workspace_id=workspace_id, segment_id=segment_id, connector=connector, audience_id=audience_id,
            mode=mode, created_at=utcnow())).inserted_primary_key[0]
        return as_dict(_destination(conn, workspace_id, segment_id, destination_id))


def _destination(conn: Connection, workspace_id: int, segment_id: int, destination_id: int) -> Any:
    row = conn.execute(select(segment_destinations).where(
        segment_destinations.c.id == destination_id, segment_destinations.c.segment_id == segment_id,
        segment_destinations.c.workspace_id == workspace_id)).first()
    if row is None:
        raise NotFound(f"destination {destination_id} does not exist", code="destination_not_found")
    return row


def list_destinations(conn: Connection, workspace_id: int, segment_id: int) -> list[dict]:
    get_segment(conn, workspace_id, segment_id)
    return [as_dict(r) for r in conn.execute(select(segment_destinations).where(
        segment_destinations.c.segment_id == segment_id, segment_destinations.c.workspace_id == workspace_id)
        .order_by(segment_destinations.c.id))]


def detach(engine: Engine, workspace_id: int, segment_id: int, destination_id: int) -> None:
    with transaction(engine) as conn:
        _destination(conn, workspace_id, segment_id, destination_id)
        conn.execute(delete(destination_members).where(destination_members.c.destination_id == destination_id))
        conn.execute(delete(erasure_removals).where(erasure_removals.c.destination_id == destination_id))
        conn.execute(delete(segment_syncs).where(segment_syncs.c.destination_id == destination_id))
        conn.execute(delete(segment_destinations).where(segment_destinations.c.id == destination_id))


def sync_log(conn: Connection, workspace_id: int, segment_id: int, destination_id: int, limit: int = 50) -> list[dict]:
    _destination(conn, workspace_id, segment_id, destination_id)
    return [_log_dict(r) for r in conn.execute(select(segment_syncs).where(
        segment_syncs.c.destination_id == destination_id).order_by(segment_syncs.c.id.desc()).limit(limit))]


def sync_destination(engine: Engine, workspace_id: int, segment_id: int, destination_id: int, *,
                     connector_options: dict | None = None, page: int = PAGE) -> dict:
    """Push the difference between the segment's current snapshot and what the destination has."""
    started = utcnow()
    with engine.connect() as conn:
        dest = _destination(conn, workspace_id, segment_id, destination_id)
        try:
            version = get_segment(conn, workspace_id, segment_id).version
        except NotFound:
            version = None
        settings = channels.connector_settings(conn, workspace_id)
        erasing = conn.execute(select(erasure_removals.c.id).where(
            erasure_removals.c.destination_id == dest.id).limit(1)).first() is not None
    tally = {"added": 0, "removed": 0, "failed": 0, "error": None}
    if version is None and not erasing:
        tally["error"] = "segment_deleted"
    else:
        try:
            active = connectors.enabled({dest.connector: settings.get(dest.connector) or {}},
                                        **(connector_options or {}))
        except connectors.ConfigurationError as error:
            active, tally["error"] = {}, f"configuration_error: {error.reason}"
        connector = active.get(dest.connector)
        if connector is None and not tally["error"]:
            tally["error"] = f"connector_not_enabled: {dest.connector}"
        if connector is not None:
            with connector:
                if _erase(engine, dest, connector, tally, page) and version is not None:
                    _push(engine, dest, version, connector, tally, page)
        if version is None and not tally["error"]:
            tally["error"] = "segment_deleted"
    return _log(engine, dest, version, tally, started)


def _erase(engine: Engine, dest: Any, connector: Any, tally: dict, page: int) -> bool:
    """Send the removals erasure queued for this destination; False when its settings are broken."""
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(erasure_removals.c.id, erasure_removals.c.member_id,
                                       erasure_removals.c.identifiers)
                                .where(erasure_removals.c.destination_id == dest.id, erasure_removals.c.id > after)
                                .order_by(erasure_removals.c.id).limit(page)).all()
        if not rows:
            return True
        after = rows[-1].id
        results = connector.remove(dest.audience_id, [channels.member(r.member_id, r.identifiers or {})
                                                      for r in rows])
        # Skipped: nothing the provider could match (so nothing was ever added); done too.
        settled = {r.key for r in results if r.status in ("sent", "skipped")}
        problems = [r for r in results if r.status == "failed"]
        done = [r.id for r in rows if r.member_id in settled]
        if done:
            with transaction(engine) as conn:
                conn.execute(delete(erasure_removals).where(erasure_removals.c.id.in_(done)))
        tally["removed"] += sum(1 for r in results if r.status == "sent")
        tally["failed"] += len(problems)
        if problems and not tally["error"]:
            tally["error"] = problems[0].reason
        if any(r.configuration_error for r in problems):
            return False


def _push(engine: Engine, dest: Any, version: int, connector: Any, tally: dict, page: int) -> None:
    if hasattr(connector, "ensure_cohort") and dest.connector == "braze":
        try:
            connector.ensure_cohort(dest.audience_id, f"likely segment {dest.segment_id}")
        except connectors.ConnectorError as error:
            tally["error"] = error.reason
            return
    for remove in ((False, True) if dest.mode == "mirror" else (False,)):
        after = 0
        while True:
            with engine.connect() as conn:
                rows = conn.execute(_difference(dest, version, remove, after, page)).all()
            if not rows:
                break
            after = rows[-1].user_id
            members = [channels.member(r.external_id, r.attributes or {}) for r in rows]
            results = (connector.remove if remove else connector.add)(dest.audience_id, members)
            accepted = {r.key for r in results if r.status == "sent"}
            problems = [r for r in results if r.status != "sent"]
            ids = [r.user_id for r in rows if r.external_id in accepted]
            _record(engine, dest.id, ids, remove)
            tally["removed" if remove else "added"] += len(ids)
            tally["failed"] += len(problems)
            if problems and not tally["error"]:
                tally["error"] = problems[0].reason
            if any(r.configuration_error for r in problems):
                return  # nothing will work until the settings are fixed


def _difference(dest: Any, version: int, remove: bool, after: int, page: int):
    """The next page of members to add (in the snapshot, not pushed) or remove (pushed, not in it)."""
    pushed = exists().where(destination_members.c.destination_id == dest.id,
                            destination_members.c.user_id == segment_members.c.user_id)
    # A user who opted out of the destination's channel (ads) is not sent, and in mirror mode
    # is removed from where an earlier sync put them.
    channel = getattr(connectors.CONNECTORS.get(dest.connector), "channel", None)
    allowed = (~unsubscribes.opted_out(dest.workspace_id, segment_members.c.user_id, channel)
               if channel == "ads" else true())
    if not remove:
        return (select(segment_members.c.user_id, users.c.external_id, users.c.attributes)
                .join(users, users.c.id == segment_members.c.user_id)
                .where(segment_members.c.segment_id == dest.segment_id, members_at(version), ~pushed,
                       segment_members.c.user_id > after, allowed)
                .order_by(segment_members.c.user_id).limit(page))
    member = exists().where(segment_members.c.segment_id == dest.segment_id,
                            segment_members.c.user_id == destination_members.c.user_id, members_at(version),
                            allowed)
    return (select(destination_members.c.user_id, users.c.external_id, users.c.attributes)
            .join(users, users.c.id == destination_members.c.user_id)
            .where(destination_members.c.destination_id == dest.id, ~member, destination_members.c.user_id > after)
            .order_by(destination_members.c.user_id).limit(page))


def _record(engine: Engine, destination_id: int, user_ids: list[int], removed: bool) -> None:
    if not user_ids:
        return
    with transaction(engine) as conn:
        if removed:
            conn.execute(delete(destination_members).where(destination_members.c.destination_id == destination_id,
                                                           destination_members.c.user_id.in_(user_ids)))
        else:
            now = int(time.time())
            conn.execute(insert(destination_members), [{"destination_id": destination_id, "user_id": u,
                                                        "synced_ts": now} for u in user_ids])


def _log(engine: Engine, dest: Any, version: int | None, tally: dict, started) -> dict:
    status = ("ok" if not tally["error"] else
              "partial" if tally["added"] or tally["removed"] else "failed")
    with transaction(engine) as conn:
        log_id = conn.execute(insert(segment_syncs).values(
            workspace_id=dest.workspace_id, destination_id=dest.id, segment_version=version, status=status,
            added=tally["added"], removed=tally["removed"], failed=tally["failed"],
            error=(tally["error"] or None) and str(tally["error"])[:300], started_at=started,
            finished_at=utcnow())).inserted_primary_key[0]
        values: dict = {"last_synced_at": utcnow()}
        if status == "ok":
            values["last_synced_version"] = version
        conn.execute(update(segment_destinations).where(segment_destinations.c.id == dest.id).values(**values))
        return _log_dict(conn.execute(select(segment_syncs).where(segment_syncs.c.id == log_id)).one())


def _log_dict(row: Any) -> dict:
    return {"id": row.id, "destination_id": row.destination_id, "segment_version": row.segment_version,
            "status": row.status, "added": row.added, "removed": row.removed, "failed": row.failed,
            "error": row.error, "started_at": row.started_at.isoformat(), "finished_at": row.finished_at.isoformat()}


def as_dict(row: Any) -> dict:
    return {"id": row.id, "segment_id": row.segment_id, "connector": row.connector,
            "audience_id": row.audience_id, "mode": row.mode, "created_at": row.created_at.isoformat(),
            "last_synced_at": row.last_synced_at.isoformat() if row.last_synced_at else None,
            "last_synced_version": row.last_synced_version}


def sync_all(engine: Engine, workspace_id: int | None = None, segment_id: int | None = None,
             connector_options: dict | None = None) -> dict[str, int]:
    """Sync every destination (of a workspace / a segment); counts for the job log."""
    query = select(segment_destinations.c.workspace_id, segment_destinations.c.segment_id, segment_destinations.c.id)
    if workspace_id is not None:
        query = query.where(segment_destinations.c.workspace_id == workspace_id)
    if segment_id is not None:
        query = query.where(segment_destinations.c.segment_id == segment_id)
    with engine.connect() as conn:
        targets = conn.execute(query.order_by(segment_destinations.c.id)).all()
    counts = {"destinations": 0, "ok": 0, "partial": 0, "failed": 0, "added": 0, "removed": 0}
    for ws, seg, dest in targets:
        log = sync_destination(engine, ws, seg, dest, connector_options=connector_options)
        counts["destinations"] += 1
        counts[log["status"]] += 1
        counts["added"] += log["added"]
        counts["removed"] += log["removed"]
    return counts
