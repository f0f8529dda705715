"""In-app messages through a CleverTap host: an event record on `/1/upload` carrying the message.

What shows the message is the host's in-app campaign with a Live-behavior trigger on the event
(`event_name`), rendered by CleverTap's SDK while the user is in the app; CleverTap lets only
real-time events trigger live campaigns ("2 hours in the past and 2 minutes in the future",
https://developer.clevertap.com/docs/events-object), so the event is stamped now. `sent` means
CleverTap stored the event, not that a message was shown: docs/in-app-messages.md says what to
set up and check once. CleverTap limits event property values to 512 bytes, so a longer value
is refused before sending.
"""
from __future__ import annotations

from typing import Iterable

from ..base import BatchInfo, MessageConnector
from ..errors import FatalError
from ..host.clevertap import COMMON, UPLOAD_LIMIT, CleverTapUpload
from ..model import Message, Result
from ..settings import connector_schema

VALUE_LIMIT = 512


class CleverTapInApp(CleverTapUpload, MessageConnector):
    name = "clevertap_in_app"
    channel = "in_app"
    batch_size = UPLOAD_LIMIT
    settings_schema = connector_schema("CleverTap in-app (via /1/upload)", {
        **COMMON,
        "event_name": {"type": "string", "minLength": 1, "default": "likely_in_app_message",
                       "title": "Event that triggers the in-app message"},
    }, required=["account_id", "passcode"])

    def prepare(self, message: Message) -> None:
        super().prepare(message)
        for key, value in _event_data(message).items():
            if len(str(value).encode()) > VALUE_LIMIT:
                raise FatalError(f"property_too_long: {key}")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        ts = int(self.wall_clock())
        return self.upload([(m.key, {"identity": m.address, "type": "event",
                                     "evtName": self.settings["event_name"],
                                     "evtData": _event_data(m), "ts": ts}) for m in batch])


def _event_data(message: Message) -> dict:
    data = {**message.data, "likely_idempotency_key": message.idempotency_key,
            "title": message.subject, "body": message.text, "html": message.html}
    return {k: v for k, v in data.items() if v is not None}
