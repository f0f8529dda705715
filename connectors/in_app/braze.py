"""In-app messages through a Braze host: an API-triggered Canvas (or campaign) per message.

Braze shows in-app messages only for events its SDK logs — "in-app messages can't be triggered
through the API or by API events" (https://www.braze.com/docs/developer_guide/in_app_messages/triggering_messages/)
— so a custom event on `/users/track` is answered 201 and never displayed. What the REST API
can trigger is an API-triggered Canvas (`POST /canvas/trigger/send`, whose In-App Message step
shows the message at the user's next session) or an API-triggered campaign
(`POST /campaigns/trigger/send`, e.g. a Content Card). Each recipient carries our rendered
message as `canvas_entry_properties` / `trigger_properties`, which the marketer's message
template reads (docs/in-app-messages.md). At most 50 recipients per request; Braze answers 201
with a `dispatch_id`. Neither endpoint de-duplicates: a resend is a second message.
"""
from __future__ import annotations

import json
from typing import Iterable

from ..base import BatchInfo, MessageConnector, url
from ..errors import ConfigurationError, FatalError
from ..host.braze import API_KEY, ENDPOINT, BrazeUsersTrack
from ..model import Message, Result
from ..settings import connector_schema

RECIPIENTS_LIMIT = 50  # "Up to 50 specific external_ids, each with individual message parameters"
PROPERTIES_LIMIT = 50_000  # Braze caps trigger / entry properties at 50 KB
# What each delivery posts to, and the recipient field that carries the message.
DELIVERIES = {"canvas": ("/canvas/trigger/send", "canvas_id", "canvas_entry_properties"),
              "campaign": ("/campaigns/trigger/send", "campaign_id", "trigger_properties")}


class BrazeInApp(BrazeUsersTrack, MessageConnector):
    name = "braze_in_app"
    channel = "in_app"
    batch_size = RECIPIENTS_LIMIT
    settings_schema = connector_schema("Braze in-app (API-triggered Canvas or campaign)", {
        "rest_endpoint": ENDPOINT,
        "api_key": {**API_KEY, "title": "REST API key (canvas.trigger.send or campaigns.trigger.send)"},
        "delivery": {"enum": list(DELIVERIES), "default": "canvas",
                     "title": "API-triggered Canvas (in-app message step) or campaign (e.g. Content Card)"},
        "canvas_id": {"type": "string", "minLength": 1, "title": "API-triggered Canvas id"},
        "campaign_id": {"type": "string", "minLength": 1, "title": "API-triggered campaign id"},
    }, required=["rest_endpoint", "api_key"])

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.path, self.id_field, self.properties_field = DELIVERIES[self.settings["delivery"]]
        if not self.settings.get(self.id_field):
            raise ConfigurationError(f"braze_in_app: delivery {self.settings['delivery']} needs {self.id_field}")

    def prepare(self, message: Message) -> None:
        super().prepare(message)
        if len(json.dumps(message_properties(message)).encode()) > PROPERTIES_LIMIT:
            raise FatalError("properties_too_large")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        body = {self.id_field: self.settings[self.id_field], "broadcast": False, "recipients": [
            {"external_user_id": m.address, self.properties_field: message_properties(m),
             "send_to_existing_only": True} for m in batch]}
        response = self.request("POST", url(self.settings["rest_endpoint"], self.path),
                                headers=self._track_headers(), data=json.dumps(body))
        self.raise_for_status(response)
        dispatch_id = (response.json() if response.content else {}).get("dispatch_id")
        return [Result.sent(m.key, dispatch_id) for m in batch]


def message_properties(message: Message) -> dict:
    """The rendered message as the template reads it; Braze gets no null values."""
    properties = {**message.data, "likely_idempotency_key": message.idempotency_key,
                  "title": message.subject, "body": message.text, "html": message.html}
    return {k: v for k, v in properties.items() if v is not None}
