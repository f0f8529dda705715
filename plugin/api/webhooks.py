"""Signed webhooks from the host. Plain paths mean the `default` workspace."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from plugin import store
from plugin.api.docs import api_doc
from plugin.api.requests import json_body, load
from plugin.api.security import verify_webhook
from plugin.errors import PayloadTooLarge, ValidationFailed
from plugin.ingest import writer
from plugin.ingest.schemas import EventBatchSchema, IngestResultSchema, UserBatchSchema, UserDeleteSchema
from plugin.store.tables import erasures, webhook_receipts
from plugin.store.types import utcnow
from plugin.workspaces import DEFAULT

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

Writer = Callable[[Connection, int, dict, str], dict]


def route(path: str):
    """Register a view on the plain path (default workspace) and the per-workspace one."""
    def register(view):
        bp.add_url_rule(path, view_func=view, methods=["POST"], defaults={"workspace": DEFAULT})
        bp.add_url_rule(f"/<workspace>{path}", view_func=view, methods=["POST"])
        return view
    return register


def receive(workspace_slug: str, endpoint: str, schema: Schema, rows_key: str | None, write: Writer):
    """Verify, validate, then write and record the delivery in one transaction.

    The receipt makes a redelivered webhook-id a no-op that returns the first answer.
    """
    workspace, webhook_id = verify_webhook(workspace_slug)
    if len(webhook_id) > 255:
        raise ValidationFailed("webhook-id is longer than 255 characters", code="invalid_webhook_id")
    body = json_body()
    limit = current_app.config["LIKELY"]["max_batch_rows"]
    if rows_key and isinstance(body, dict) and isinstance(body.get(rows_key), list) and len(body[rows_key]) > limit:
        raise PayloadTooLarge(f"a batch holds at most {limit} {rows_key}; split it",
                              details={"limit": limit, "received": len(body[rows_key])})
    data = load(schema, body)
    return write_once(workspace.id, webhook_id, endpoint, lambda conn: write(conn, workspace.id, data, webhook_id))


def write_once(workspace_id: int, webhook_id: str, endpoint: str, write: Callable[[Connection], dict]):
    """Write and record the delivery in one transaction; a redelivery answers as the first did."""
    engine = store.engine()
    try:
        with store.transaction(engine) as conn:
            prior = _prior(conn, workspace_id, endpoint, webhook_id)
            if prior is not None:
                return jsonify({**prior, "duplicate": True})
            result = write(conn)
            conn.execute(insert(webhook_receipts).values(
                workspace_id=workspace_id, webhook_id=webhook_id, endpoint=endpoint,
                response=result, received_at=utcnow()))
    except IntegrityError:
        # A concurrent delivery of the same webhook-id won the race; answer as it did.
        with engine.connect() as conn:
            prior = _prior(conn, workspace_id, endpoint, webhook_id)
        if prior is None:
            raise
        return jsonify({**prior, "duplicate": True})
    return jsonify({**result, "duplicate": False})


def _prior(conn: Connection, workspace_id: int, endpoint: str, webhook_id: str) -> dict | None:
    """The first answer to this webhook-id on this endpoint of this workspace (ids are the sender's:
    the same id on another endpoint is another delivery)."""
    return conn.execute(select(webhook_receipts.c.response).where(
        webhook_receipts.c.workspace_id == workspace_id, webhook_receipts.c.endpoint == endpoint,
        webhook_receipts.c.webhook_id == webhook_id)).scalar()


@route("/events")
@api_doc(summary="Ingest a batch of user events", tags=["webhooks"], body=EventBatchSchema,
         responses={200: IngestResultSchema},
         description="The plain path acts on the `default` workspace. A redelivered webhook-id "
                     "returns the first answer with `duplicate: true`.")
def events(workspace: str):
    def write(conn, workspace_id, data, _webhook_id):
        rows = data["events"]
        return {"accepted": len(rows), "written": writer.write_events(conn, workspace_id, rows)}
    return receive(workspace, "events", EventBatchSchema(), "events", write)


@route("/users")
@api_doc(summary="Upsert user attributes", tags=["webhooks"], body=UserBatchSchema,
         responses={200: IngestResultSchema},
         description="Later values win; null removes an attribute.")
def users(workspace: str):
    def write(conn, workspace_id, data, _webhook_id):
        rows = data["users"]
        return {"accepted": len(rows), "written": writer.upsert_users(conn, workspace_id, rows)}
    return receive(workspace, "users", UserBatchSchema(), "users", write)


@route("/users/delete")
@api_doc(summary="Erase users (right to erasure)", tags=["webhooks"], body=UserDeleteSchema,
         responses={200: IngestResultSchema})
def delete_users(workspace: str):
    def write(conn, workspace_id, data, webhook_id):
        erased = writer.erase_users(conn, workspace_id, data["user_ids"])
        conn.execute(insert(erasures).values(workspace_id=workspace_id, webhook_id=webhook_id,
                                             users_erased=erased, requested_at=utcnow()))
        return {"accepted": len(data["user_ids"]), "written": erased}
    return receive(workspace, "users_delete", UserDeleteSchema(), "user_ids", write)
