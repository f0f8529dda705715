"""Braze Currents files in, as Currents writes them to storage: Avro container files, one
event type per file, under a path holding `event_type=<type>`.

Field names and event types are Braze's own (Currents event glossary,
https://www.braze.com/docs/user_guide/data_and_analytics/braze_currents/event_glossary/customer_behavior_events/
and …/message_engagement_events/): every record has `id` (the event's unique id),
`user_id` (Braze's id), `external_user_id` (the host's user id, ours), `time` (epoch seconds);
custom events add `name` and `properties` (a JSON-encoded string), purchases `product_id`,
`price`, `currency`, sessions `session_id` (and `duration` at the end), message engagement
events `campaign_id`, `canvas_id`, `url`, ….

- `users.behaviors.CustomEvent` → an event named by `name`, its decoded `properties`.
- `users.behaviors.Purchase` → `purchase`, with `product_id`, `price`, `currency` among the
  properties (numeric: the predictions use price as a feature).
- `users.behaviors.app.SessionStart` / `FirstSession` / `SessionEnd` → `session_start`,
  `first_session`, `session_end`.
- `users.messages.<channel>.<Action>` (e.g. `users.messages.pushnotification.Open`) → an event
  of that very name; engagement with likely's own messages is recognised from it.
- A record's `timezone` (IANA) becomes the user's `time_zone` attribute.
- `id` is the event's id, so a file imported twice is written once.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from plugin.ingest.formats import Mapped, RowProblem, compact, text

BEHAVIOUR_EVENTS = {
    "users.behaviors.Purchase": "purchase",
    "users.behaviors.app.SessionStart": "session_start",
    "users.behaviors.app.FirstSession": "first_session",
    "users.behaviors.app.SessionEnd": "session_end",
}
CUSTOM_EVENT = "users.behaviors.CustomEvent"
MESSAGE_EVENT = re.compile(r"^users\.messages\.[A-Za-z]+\.[A-Za-z]+$")
# Fields kept as properties of non-custom events (identity and device fields are not behaviour).
KEPT_FIELDS = ("product_id", "price", "currency", "session_id", "duration", "campaign_id",
               "canvas_id", "canvas_step_id", "message_variation_id", "send_id", "dispatch_id",
               "url", "button_id", "platform", "app_id")
_EVENT_TYPE_IN_PATH = re.compile(r"event_type=([A-Za-z.]+)")


def event_type_of(path: Path) -> str:
    """The Currents event type a file holds, read off its storage path."""
    match = _EVENT_TYPE_IN_PATH.search(path.as_posix())
    if not match:
        raise ValueError(f"{path.name}: the path names no Currents event type "
                         "(Currents writes files under …/event_type=<type>/…)")
    event_type = match.group(1)
    if not (event_type == CUSTOM_EVENT or event_type in BEHAVIOUR_EVENTS or MESSAGE_EVENT.match(event_type)):
        raise ValueError(f"{path.name}: Currents event type {event_type} is not one likely imports "
                         "(custom events, purchases, sessions, message engagement)")
    return event_type


def records(path: Path) -> Iterator[dict]:
    """The records of one Currents Avro file, streamed."""
    import fastavro  # imported here: only the import command needs it
    with open(path, "rb") as handle:
        yield from fastavro.reader(handle)


def adapter(event_type: str):
    """The record → rows mapping for one file's event type."""
    def adapt(record: dict) -> Mapped:
        user_id = text(record.get("external_user_id"))
        if user_id is None:
            raise RowProblem({"external_user_id": ["Empty: a user without an external id names no "
                                                   "host user."]})
        if record.get("time") is None:
            raise RowProblem({"time": ["Required (epoch seconds)."]})
        if event_type == CUSTOM_EVENT:
            name, properties = record.get("name"), _properties(record.get("properties"))
        else:
            name = BEHAVIOUR_EVENTS.get(event_type, event_type)
            properties = {**_properties(record.get("properties")),
                          **compact({k: record.get(k) for k in KEPT_FIELDS})}
        mapped = Mapped(events=[compact({"user_id": user_id, "event": name, "timestamp": record["time"],
                                         "properties": properties or None, "event_id": text(record.get("id"))})])
        if isinstance(record.get("timezone"), str) and record["timezone"]:
            mapped.users.append({"user_id": user_id, "time_zone": record["timezone"]})
        return mapped
    return adapt


def _properties(value: Any) -> dict:
    if value in (None, ""):
        return {}
    try:
        decoded = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise RowProblem({"properties": ["Not a JSON-encoded object."]}) from None
    if not isinstance(decoded, dict):
        raise RowProblem({"properties": ["Not a JSON-encoded object."]})
    return decoded
