"""Engagement that arrives as host events (push opens, in-app clicks, email opens the host saw).

Recognised by the event names each host documents:
- Segment's mobile and email specs (https://segment.com/docs/connections/spec/mobile/#push-notification-events,
  https://segment.com/docs/connections/spec/email/): `Push Notification Received`,
  `Push Notification Tapped`, `Email Delivered`, `Email Opened`, `Email Link Clicked`,
  `Email Bounced`, `Email Marked as Spam`, `Unsubscribed`;
- Braze Currents message engagement types (as the Currents adapter names them):
  `users.messages.pushnotification.Open`, `users.messages.inappmessage.Impression` / `.Click`,
  `users.messages.email.Delivery` / `.Open` / `.Click` / `.Bounce` / `.SoftBounce` /
  `.MarkAsSpam` / `.Unsubscribe`;
- CleverTap system events (https://docs.clevertap.com/docs/events#system-events):
  `Notification Viewed`, `Notification Clicked`;
- likely's own generic names `message_delivered`, `message_opened`, `message_clicked` with a
  `channel` property.

The event's `likely_idempotency_key` property (every push and in-app message carries it in
its data) names the message; without it, the latest message sent to the user on that channel.
"""
from __future__ import annotations

import json
from typing import Sequence

from sqlalchemy import Connection

from plugin.engagement.outcomes import Engagement, record

NAMES: dict[str, tuple[str | None, str]] = {
    "Push Notification Received": ("push", "delivered"),
    "Push Notification Tapped": ("push", "opened"),
    "Email Delivered": ("email", "delivered"),
    "Email Opened": ("email", "opened"),
    "Email Link Clicked": ("email", "clicked"),
    "Email Bounced": ("email", "bounced"),
    "Email Marked as Spam": ("email", "complained"),
    "Unsubscribed": ("email", "unsubscribed"),
    "users.messages.pushnotification.Open": ("push", "opened"),
    "users.messages.inappmessage.Impression": ("in_app", "opened"),
    "users.messages.inappmessage.Click": ("in_app", "clicked"),
    "users.messages.email.Delivery": ("email", "delivered"),
    "users.messages.email.Open": ("email", "opened"),
    "users.messages.email.Click": ("email", "clicked"),
    "users.messages.email.Bounce": ("email", "bounced"),
    "users.messages.email.SoftBounce": ("email", "bounced"),
    "users.messages.email.MarkAsSpam": ("email", "complained"),
    "users.messages.email.Unsubscribe": ("email", "unsubscribed"),
    "Notification Viewed": ("push", "opened"),
    "Notification Clicked": ("push", "clicked"),
    "message_delivered": (None, "delivered"),
    "message_opened": (None, "opened"),
    "message_clicked": (None, "clicked"),
}
CHANNELS = ("email", "push", "in_app", "webhook")


def record_events(conn: Connection, workspace_id: int, prepared: Sequence[tuple],
                  user_ids: dict[str, int]) -> int:
    """Apply the engagement among written events (writer's prepared tuples); return matches."""
    engagements = []
    for external_id, name, ts, props, _key in prepared:
        known = NAMES.get(name)
        if known is None:
            continue
        properties = json.loads(props) if props else {}
        channel, kind = known
        channel = channel or properties.get("channel")
        if channel not in CHANNELS:
            continue
        key = properties.get("likely_idempotency_key")
        engagements.append(Engagement(
            kind=kind, ts=ts, key=key if isinstance(key, str) and key else None,
            user_id=user_ids.get(external_id), channel=channel,
            bounce="soft" if name.endswith("SoftBounce") else ("hard" if kind == "bounced" else None)))
    return record(conn, workspace_id, engagements) if engagements else 0
