"""Generic outbound webhook to a customer's own URL, signed with Standard Webhooks.

Headers `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` come from the `standardwebhooks` package with a `whsec_` secret.
Per-recipient mode posts one message per request and uses the idempotency key as the
`webhook-id`, so the receiver can deduplicate redeliveries; batch mode posts up to
`batch_size` messages and derives the id from their keys (the same batch gets the same id).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Iterable

from standardwebhooks.webhooks import Webhook

from .base import BatchInfo, MessageConnector
from .errors import ConfigurationError, RetriableError
from .model import Message, Result
from .settings import connector_schema, secret

MESSAGE_TYPE, BATCH_TYPE, PING_TYPE = "likely.message", "likely.messages", "likely.ping"


class SignedWebhook(MessageConnector):
    name = "webhook"
    channel = "webhook"
    settings_schema = connector_schema("Signed webhook", {
        # A webhook URL often embeds a token (Slack, Zapier...), so it is treated as a secret.
        # Free-form: any public host; internal addresses are refused when connecting (connectors.net).
        "url": secret({"type": "string", "pattern": "^https://", "maxLength": 2048, "x-destination": True,
                       "title": "Endpoint URL (HTTPS)"}),
        "secret": secret({"type": "string", "pattern": "^whsec_[A-Za-z0-9+/=]+$",
                          "title": "Signing secret (whsec_...)"}),
        "mode": {"enum": ["per_recipient", "batch"], "default": "per_recipient"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    }, required=["url", "secret"])

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        try:
            self.signer = Webhook(self.settings["secret"])
        except Exception as exc:  # binascii.Error, EmptyWebhookSecretError...: never show the value
            raise ConfigurationError(f"webhook: signing secret is not valid ({type(exc).__name__})") \
                from None
        self.redact.add(self.settings["secret"].removeprefix("whsec_"))  # the key without its prefix
        self.batch_size = self.settings["batch_size"] if self.settings["mode"] == "batch" else 1
        # A receiver de-duplicates on webhook-id (Standard Webhooks); per recipient that id is our
        # idempotency key, so a resend is harmless. A batch's id depends on how it was cut: not so.
        self.deduplicates = self.settings["mode"] == "per_recipient"

    def prepare(self, message: Message) -> None:
        """A webhook needs no address: the customer's endpoint gets the recipient id."""

    def check(self) -> None:
        response = self._check_call(**self._signed(f"ping_{int(self.wall_clock())}", PING_TYPE, {}))
        if not response.ok:
            raise ConfigurationError(f"webhook: endpoint answered http_{response.status_code}")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        if self.settings["mode"] == "batch":
            digest = hashlib.sha256("\n".join(m.idempotency_key for m in batch).encode()).hexdigest()
            webhook_id = f"batch_{digest[:32]}"
            call = self._signed(webhook_id, BATCH_TYPE, {"messages": [_payload(m) for m in batch]})
        else:
            [message] = batch
            webhook_id = message.idempotency_key
            call = self._signed(webhook_id, MESSAGE_TYPE, _payload(message))
        response = self.request(**call)
        self.raise_for_status(response)
        return [Result.sent(m.idempotency_key, webhook_id) for m in batch]

    def _signed(self, webhook_id: str, event_type: str, data: dict) -> dict:
        now = datetime.fromtimestamp(int(self.wall_clock()), tz=timezone.utc)
        body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data},
                          separators=(",", ":"), ensure_ascii=False)
        try:
            signature = self.signer.sign(webhook_id, now, body)
        except Exception as exc:  # signing never fails for valid input; keep the secret out anyway
            raise RetriableError(f"signing_failed: {type(exc).__name__}") from None
        headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signature, "Content-Type": "application/json",
                   "User-Agent": "likely-webhooks/1"}
        return {"method": "POST", "url": self.settings["url"], "headers": headers,
                "data": body.encode("utf-8")}


def _payload(message: Message) -> dict:
    return {"idempotency_key": message.idempotency_key, "recipient_id": message.recipient_id,
            "address": message.address, "subject": message.subject, "text": message.text,
            "html": message.html, "data": dict(message.data),
            "unsubscribe_url": message.unsubscribe_url}
