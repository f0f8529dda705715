"""The segments page: every segment of the workspace, its members count over its snapshots, and
where it is synced with each destination's last sync.

Read-only and bounded: one query per kind of row (segments, their retained snapshots,
destinations, last syncs), never one per member.
"""
from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import Connection, func, select

from plugin import store
from plugin.api.docs import api_doc
from plugin.api.page_auth import page_login_required, page_workspace
from plugin.api.pages.views import HTML, SIGN_IN, bp
from plugin.audiences.segments import RETAINED_VERSIONS
from plugin.store.tables import segment_destinations, segment_syncs, segment_versions, segments

MAX_SEGMENTS = 200


def segment_rows(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    """The segments (newest first, at most MAX_SEGMENTS) with their snapshots and destinations."""
    rows = conn.execute(select(segments).where(segments.c.workspace_id == workspace_id)
                        .order_by(segments.c.id.desc()).limit(MAX_SEGMENTS)).all()
    ids = [row.id for row in rows]
    if not ids:
        return []
    history: dict[int, list] = {}
    for version in conn.execute(select(segment_versions.c.segment_id, segment_versions.c.version,
                                       segment_versions.c.size, segment_versions.c.added,
                                       segment_versions.c.removed, segment_versions.c.created_at)
                                .where(segment_versions.c.segment_id.in_(ids))
                                .order_by(segment_versions.c.segment_id, segment_versions.c.version)):
        history.setdefault(version.segment_id, []).append(version)
    latest_sync = (select(segment_syncs.c.destination_id, func.max(segment_syncs.c.id).label("id"))
                   .group_by(segment_syncs.c.destination_id).subquery())
    destinations: dict[int, list] = {}
    for destination in conn.execute(
            select(segment_destinations, segment_syncs.c.status.label("sync_status"),
                   segment_syncs.c.added.label("sync_added"), segment_syncs.c.removed.label("sync_removed"),
                   segment_syncs.c.failed.label("sync_failed"), segment_syncs.c.error.label("sync_error"))
            .select_from(segment_destinations
                         .outerjoin(latest_sync, latest_sync.c.destination_id == segment_destinations.c.id)
                         .outerjoin(segment_syncs, segment_syncs.c.id == latest_sync.c.id))
            .where(segment_destinations.c.workspace_id == workspace_id, segment_destinations.c.segment_id.in_(ids))
            .order_by(segment_destinations.c.id)):
        destinations.setdefault(destination.segment_id, []).append(destination)
    return [{"segment": row, "versions": history.get(row.id, [])[-RETAINED_VERSIONS:],
             "destinations": destinations.get(row.id, [])} for row in rows]


@bp.get("/segments")
@api_doc(summary="The workspace's segments: members over time, destinations and their last sync (HTML page)",
         tags=["pages"], security="page", errors=(),
         responses={200: {"description": "The segments page", **HTML}, 302: SIGN_IN})
@page_login_required
def segment_list():
    workspace = page_workspace()
    with store.engine().connect() as conn:
        rows = segment_rows(conn, workspace.id)
    return render_template("pages/segments.html", workspace=workspace, rows=rows)
