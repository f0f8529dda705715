"""SendGrid Event Webhook events → engagement on outbox rows.

Field names are SendGrid's (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
a POST holds a JSON array of events, each with `event`, `email`, `timestamp` (epoch seconds),
`sg_event_id`, `sg_message_id`, and the message's `custom_args` flattened in — likely sends
`likely_idempotency_key` and `likely_recipient_id`, which name the outbox row. A bounce's
`type` is `bounce` (the address does not exist: hard) or `blocked` (refused this time: soft).

delivered → delivered; open → opened; click → clicked; bounce → bounced (hard ones retire the
address); dropped → dropped; spamreport → complained (retires the address and opts the user out
of email); unsubscribe / group_unsubscribe → unsubscribed (opts out of email). Other events
(processed, deferred, group_resubscribe) are accepted and ignored.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Connection, select

from plugin.engagement.outcomes import Engagement, record
from plugin.errors import ValidationFailed
from plugin.ingest.schemas import MIN_TIMESTAMP
from plugin.store.tables import users

KINDS = {"delivered": "delivered", "open": "opened", "click": "clicked", "bounce": "bounced",
         "dropped": "dropped", "spamreport": "complained", "unsubscribe": "unsubscribed",
         "group_unsubscribe": "unsubscribed"}


class ResultSchema(Schema):
    accepted = fields.Integer(metadata={"description": "Events in the request."})
    matched = fields.Integer(metadata={"description": "Engagement events that found their message."})
    ignored = fields.Integer(metadata={"description": "Events likely does not track, or for mail it did not send."})
    duplicate = fields.Boolean()


def load(body: Any) -> list[dict]:
    """Check every event; a bad one refuses the request, naming its index."""
    if not isinstance(body, list) or not body:
        raise ValidationFailed("the body is a non-empty JSON array of SendGrid events; nothing was written",
                               details={"_body": ["Must be a non-empty array."]})
    errors: dict[str, dict] = {}
    for index, event in enumerate(body):
        problems: dict[str, list[str]] = {}
        if not isinstance(event, dict):
            errors[str(index)] = {"_row": ["Each event is a JSON object."]}
            continue
        if not isinstance(event.get("event"), str) or not event["event"]:
            problems["event"] = ["Required: the event type."]
        stamp = event.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < MIN_TIMESTAMP:
            problems["timestamp"] = ["Required: epoch seconds."]
        for name in ("email", "likely_idempotency_key", "likely_recipient_id", "type"):
            if event.get(name) is not None and not isinstance(event[name], str):
                problems[name] = ["Must be a string."]
        if problems:
            errors[str(index)] = problems
    if errors:
        raise ValidationFailed(f"{len(errors)} of {len(body)} events are invalid; nothing was written",
                               details=errors)
    return body


def apply(conn: Connection, workspace_id: int, events: list[dict]) -> dict:
    engagements = []
    recipients = {e["likely_recipient_id"] for e in events if e["event"] in KINDS and e.get("likely_recipient_id")}
    ids = dict(conn.execute(select(users.c.external_id, users.c.id).where(
        users.c.workspace_id == workspace_id, users.c.external_id.in_(recipients))).all()) if recipients else {}
    for e in events:
        kind = KINDS.get(e["event"])
        if kind is None:
            continue
        bounce = None
        if kind == "bounced":
            bounce = "soft" if e.get("type") == "blocked" else "hard"
        engagements.append(Engagement(kind=kind, ts=e["timestamp"], key=e.get("likely_idempotency_key") or None,
                                      user_id=ids.get(e.get("likely_recipient_id")), channel="email",
                                      bounce=bounce, address=e.get("email")))
    matched = record(conn, workspace_id, engagements)
    return {"accepted": len(events), "matched": matched, "ignored": len(events) - matched}
