"""Host event formats and provider event webhooks, each as its sender really sends it.

- `POST /webhooks/{workspace}/segment`: Segment Spec messages (or a `batch`);
- `POST /webhooks/{workspace}/clevertap`: CleverTap upload records, Get Events records
  (`?event=<name>` names them) or webhook profile payloads;
- `POST /webhooks/{workspace}/sendgrid`: SendGrid Event Webhook events (engagement back).

Each is verified its sender's way (see `plugin.api.inbound`) or with Standard Webhooks, validated
whole before anything is written (a bad row answers 400 naming the row, nothing written), and
written through the one writer in one transaction with its receipt.
"""
from __future__ import annotations

from flask import current_app, request
from marshmallow import EXCLUDE, Schema, fields, validate

from plugin.api.docs import api_doc
from plugin.api.inbound import verify_clevertap, verify_segment, verify_sendgrid
from plugin.api.requests import json_body, load
from plugin.api.webhooks import route, write_once
from plugin.engagement import sendgrid_events
from plugin.errors import PayloadTooLarge, ValidationFailed
from plugin.ingest import writer
from plugin.ingest.formats import Converted, clevertap, convert, segment
from plugin.ingest.schemas import IngestResultSchema

ANY_JSON = {"description": "The sender's own JSON payload (see the endpoint's description)."}
JSON_BODY = {"oneOf": [{"type": "object"}, {"type": "array"}]}


def _limit(count: int) -> None:
    limit = current_app.config["LIKELY"]["max_batch_rows"]
    if count > limit:
        raise PayloadTooLarge(f"a batch holds at most {limit} rows; split it",
                              details={"limit": limit, "received": count})


def _refuse_bad_rows(converted: Converted) -> None:
    if not converted.rows:
        raise ValidationFailed("the request holds no rows; nothing was written", code="empty_batch")
    if converted.errors:
        raise ValidationFailed(f"{len(converted.errors)} of {converted.rows} rows are invalid; nothing was written",
                               details=converted.errors)


def _write(workspace_id: int, webhook_id: str, endpoint: str, converted: Converted):
    def write(conn) -> dict:
        events = writer.write_events(conn, workspace_id, converted.events) if converted.events else 0
        users = writer.upsert_users(conn, workspace_id, converted.users) if converted.users else 0
        return {"accepted": converted.rows, "written": events + users}
    return write_once(workspace_id, webhook_id, endpoint, write)


@route("/segment")
@api_doc(summary="Ingest Segment Spec messages (track, identify, page, screen, batch)", tags=["webhooks"],
         body=JSON_BODY, responses={200: IngestResultSchema},
         description="Signed with Standard Webhooks, or by Segment's Webhooks destination with its shared "
                     "secret (`X-Signature`: hex HMAC-SHA1 of the body; set `inbound.segment_shared_secret`). "
                     "`userId` names the user, `messageId` the event (redeliveries are written once).")
def segment_messages(workspace: str):
    found, webhook_id = verify_segment(workspace)
    body = json_body()
    pairs = list(segment.messages(body))
    _limit(len(pairs))
    converted = convert(pairs, segment.adapt)
    _refuse_bad_rows(converted)
    return _write(found.id, webhook_id, "segment", converted)


class CleverTapQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a sender may add its own parameters to the URL it calls

    event = fields.String(validate=validate.Length(1, 255),
                          metadata={"description": "The event a Get Events export's records are of."})


@route("/clevertap")
@api_doc(summary="Ingest CleverTap events and profiles", tags=["webhooks"], body=JSON_BODY,
         query=CleverTapQuerySchema, responses={200: IngestResultSchema},
         description="Upload API records under `d`, Get Events records under `records` (`?event=` names "
                     "their event) or a webhook's `profiles`. Signed with Standard Webhooks, or HTTP Basic "
                     "with `inbound.clevertap_webhook_password` (CleverTap webhooks cannot sign).")
def clevertap_records(workspace: str):
    found, webhook_id = verify_clevertap(workspace)
    body = json_body()
    pairs = list(clevertap.rows(body))
    _limit(len(pairs))
    event = load(CleverTapQuerySchema(), request.args.to_dict()).get("event")
    converted = convert(pairs, clevertap.adapter(event))
    _refuse_bad_rows(converted)
    return _write(found.id, webhook_id, "clevertap", converted)


@route("/sendgrid")
@api_doc(summary="SendGrid Event Webhook: delivered, open, click, bounce, dropped, spamreport, unsubscribe",
         tags=["webhooks"], body={"type": "array", "items": {"type": "object"}},
         responses={200: sendgrid_events.ResultSchema},
         description="Signed by SendGrid (`X-Twilio-Email-Event-Webhook-Signature` / `-Timestamp`, ECDSA; set "
                     "`inbound.sendgrid_verification_key`) or with Standard Webhooks. Each event names its "
                     "message by the `likely_idempotency_key` custom argument likely sent it with.")
def sendgrid(workspace: str):
    found, webhook_id = verify_sendgrid(workspace)
    body = json_body()
    if isinstance(body, list):
        _limit(len(body))
    events = sendgrid_events.load(body)
    return write_once(found.id, webhook_id, "sendgrid",
                      lambda conn: sendgrid_events.apply(conn, found.id, events))
