"""In-app messages through a Braze host: a custom event on `/users/track` carrying the message.

The host's in-app campaign is triggered by the event (`event_name`), and reads title, body,
html and the tier's data from the event properties. 75 events per request.
"""
from __future__ import annotations

import json
from typing import Iterable

from ..base import BatchInfo, MessageConnector
from ..errors import FatalError
from ..host.braze import API_KEY, ENDPOINT, TRACK_LIMIT, BrazeUsersTrack, braze_time
from ..model import Message, Result
from ..settings import connector_schema

PROPERTIES_LIMIT = 50_000  # Braze caps an event's properties payload at 50 KB


class BrazeInApp(BrazeUsersTrack, MessageConnector):
    name = "braze_in_app"
    channel = "in_app"
    batch_size = TRACK_LIMIT
    settings_schema = connector_schema("Braze in-app (via /users/track)", {
        "rest_endpoint": ENDPOINT,
        "api_key": API_KEY,
        "event_name": {"type": "string", "minLength": 1, "default": "likely_in_app_message",
                       "title": "Custom event that triggers the in-app message"},
    }, required=["rest_endpoint", "api_key"])

    def prepare(self, message: Message) -> None:
        super().prepare(message)
        if len(json.dumps(_properties(message)).encode()) > PROPERTIES_LIMIT:
            raise FatalError("properties_too_large")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        now = braze_time(None, self.wall_clock())
        return self.track([(m.key, "events", {"external_id": m.address, "name": self.settings["event_name"],
                                              "time": now, "properties": _properties(m)})
                           for m in batch])


def _properties(message: Message) -> dict:
    return {**message.data, "likely_idempotency_key": message.idempotency_key,
            "title": message.subject, "body": message.text, "html": message.html}
