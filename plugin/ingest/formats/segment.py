"""The Segment Spec in: `track`, `identify`, `page`, `screen` messages and `batch` envelopes.

Field names are Segment's own (Segment Spec, https://segment.com/docs/connections/spec/common/,
…/spec/track/, …/spec/identify/, …/spec/page/, …/spec/screen/; the batch envelope of the
HTTP Tracking API, …/sources/catalog/libraries/server/http-api/#batch): `type`, `userId`,
`anonymousId`, `messageId`, `timestamp` (or `originalTimestamp`, `sentAt`, `receivedAt`),
`event`, `name`, `properties`, `traits` and `context`.

- `track` → an event named by `event`, with `properties`.
- `page` / `screen` → an event `Page Viewed` / `Screen Viewed` (Segment's own wording for
  them in its e-commerce and mobile specs), the page or screen `name` and `category` among the
  properties.
- `identify` → the user's attributes from `traits`; Segment's reserved traits are renamed to
  ours (`firstName` → `first_name`, `address.city` → `city`, …), `context.timezone` becomes
  the `time_zone` attribute and `context.locale` the `language`.
- `messageId` is the event's id, so a redelivered message is written once.

Only identified users (`userId`) are kept: an `anonymousId` alone names no host user.
"""
from __future__ import annotations

from typing import Any, Iterable

from plugin.ingest.formats import Mapped, RowProblem, compact, text

TYPES = ("track", "identify", "page", "screen")
PAGE_EVENTS = {"page": "Page Viewed", "screen": "Screen Viewed"}
# Segment reserved traits → our attribute names (https://segment.com/docs/connections/spec/identify/#traits)
RESERVED_TRAITS = {"email": "email", "phone": "phone", "firstName": "first_name",
                   "lastName": "last_name", "first_name": "first_name", "last_name": "last_name"}
ADDRESS_FIELDS = {"city": "city", "state": "state", "postalCode": "zip", "country": "country"}
TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")


def messages(body: Any) -> Iterable[tuple[str, Any]]:
    """(index, message) pairs of a single message or a `batch` envelope."""
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        # Context on the envelope applies to every message that has none of its own.
        shared = body.get("context") if isinstance(body.get("context"), dict) else None
        for index, message in enumerate(body["batch"]):
            if shared and isinstance(message, dict) and "context" not in message:
                message = {**message, "context": shared}
            yield f"batch.{index}", message
    else:
        yield "_message", body


def adapt(message: dict) -> Mapped:
    kind = message.get("type")
    if kind not in TYPES:
        raise RowProblem({"type": [f"Must be one of: {', '.join(TYPES)} (or a batch)."]})
    user_id = text(message.get("userId"))
    if user_id is None:
        raise RowProblem({"userId": ["Required: only identified users are kept (anonymousId alone "
                                     "names no host user)."]})
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    if kind == "identify":
        traits = message.get("traits")
        if traits is not None and not isinstance(traits, dict):
            raise RowProblem({"traits": ["Must be an object."]})
        return Mapped(users=[{"user_id": user_id, **user_attributes(traits or {}, context)}])
    stamp = next((message[f] for f in TIMESTAMP_FIELDS if message.get(f) is not None), None)
    if stamp is None:
        raise RowProblem({"timestamp": ["Required (or originalTimestamp, receivedAt, sentAt)."]})
    properties = message.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise RowProblem({"properties": ["Must be an object."]})
    properties = dict(properties or {})
    if kind == "track":
        event = message.get("event")
    else:
        event = PAGE_EVENTS[kind]
        properties.update(compact({"name": message.get("name"), "category": message.get("category")}))
    return Mapped(events=[compact({"user_id": user_id, "event": event, "timestamp": stamp,
                                   "properties": properties or None,
                                   "event_id": text(message.get("messageId"))})])


def user_attributes(traits: dict, context: dict) -> dict:
    """Segment traits as our attributes: reserved ones renamed, objects flattened one level."""
    attributes: dict[str, Any] = {}
    for name, value in traits.items():
        if name in RESERVED_TRAITS:
            attributes[RESERVED_TRAITS[name]] = value
        elif name == "address" and isinstance(value, dict):
            for part, ours in ADDRESS_FIELDS.items():
                if value.get(part) is None:
                    continue
                if ours == "country" and not (isinstance(value[part], str) and len(value[part]) == 2):
                    attributes["address.country"] = value[part]  # a name, not an ISO code
                else:
                    attributes[ours] = value[part]
        elif isinstance(value, dict):
            attributes.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            attributes[name] = value
    if isinstance(context.get("timezone"), str):
        attributes.setdefault("time_zone", context["timezone"])
    if isinstance(context.get("locale"), str):
        attributes.setdefault("language", context["locale"])
    return attributes
