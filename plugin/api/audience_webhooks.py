"""POST /webhooks/audiences: the host's audience builder saved an audience; keep its segment in step.

Idempotent twice over: a redelivered webhook-id replays the first answer (the receipt), and
the same host audience id always maps to the same segment, recomputed only when its
definition changes.
"""
from __future__ import annotations

import hashlib
import time

from marshmallow import Schema, fields, validate
from sqlalchemy import Connection, func, select, update

from plugin.api.docs import api_doc
from plugin.api.webhooks import receive, route
from plugin.audiences import segments
from plugin.audiences.schema import AudienceDefinition
from plugin.audiences.targeting import check_targetable
from plugin.ingest.schemas import ExternalId
from plugin.store import is_postgres
from plugin.store.tables import segments as segments_table
from plugin.store.types import utcnow


class HostAudienceSchema(Schema):
    audience_id = ExternalId(required=True, validate=validate.Length(1, 255),
                             metadata={"description": "The host's id for the audience."})
    name = fields.String(required=True, validate=validate.Length(1, 255))
    definition = AudienceDefinition(required=True)


def _serialise(conn: Connection, workspace_id: int, audience_id: str) -> None:
    """On PostgreSQL, two deliveries for one new host audience must not both create it."""
    if is_postgres(conn):
        digest = hashlib.blake2b(f"audience:{workspace_id}:{audience_id}".encode(), digest_size=8).digest()
        conn.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))
    # SQLite: the write transaction (BEGIN IMMEDIATE) already runs one writer at a time.


def upsert_host_audience(conn: Connection, workspace_id: int, data: dict, _webhook_id: str) -> dict:
    """Create the segment for a host audience, or bring it up to date."""
    audience_id, name, node = data["audience_id"], data["name"], data["definition"]
    _serialise(conn, workspace_id, audience_id)
    existing = conn.execute(select(segments_table).where(
        segments_table.c.workspace_id == workspace_id,
        segments_table.c.host_audience_id == audience_id)).first()
    now_ts = int(time.time())
    if existing is None:
        row, outcome = segments.create_segment(conn, workspace_id, name, node, now_ts, audience_id), "created"
    elif existing.definition != node:
        row, _ = segments.refresh_segment(conn, workspace_id, existing.id, now_ts, node=node, name=name)
        outcome = "updated"
    else:
        check_targetable(conn, workspace_id, node)  # a prediction may have been archived meanwhile
        if existing.name != name:
            conn.execute(update(segments_table).where(segments_table.c.id == existing.id)
                         .values(name=name, updated_at=utcnow()))
        row, outcome = existing, "unchanged" if existing.name == name else "renamed"
    return {"segment_id": row.id, "audience_id": audience_id, "size": row.size, "version": row.version,
            "outcome": outcome}


class HostAudienceResultSchema(Schema):
    segment_id = fields.Integer(required=True)
    audience_id = fields.String(required=True)
    size = fields.Integer(required=True)
    version = fields.Integer(required=True)
    outcome = fields.String(required=True, metadata={"enum": ["created", "updated", "renamed", "unchanged"]})
    duplicate = fields.Boolean(required=True, metadata={"description": "A redelivered webhook-id: the first answer."})


@route("/audiences")
@api_doc(summary="The host saved an audience: keep its segment in step", tags=["webhooks"],
         body=HostAudienceSchema, responses={200: HostAudienceResultSchema})
def host_audiences(workspace: str):
    return receive(workspace, "audiences", HostAudienceSchema(), None, upsert_host_audience)
