"""Signing requests exactly as a host does (Standard Webhooks)."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"likely-test-secret-0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-workspace-secret-0123456789").decode()
API_KEY = "test-api-key-0123456789"


def signed_headers(body: str, secret: str = WEBHOOK_SECRET, webhook_id: str | None = None,
                   timestamp: datetime | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(timezone.utc)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, timestamp, body),
        "Content-Type": "application/json",
    }


def post_signed(client, path: str, payload, secret: str = WEBHOOK_SECRET, webhook_id: str | None = None,
                timestamp: datetime | None = None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(path, data=body, headers=signed_headers(body, secret, webhook_id, timestamp))


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

# The host platform's partner secret (signs install and uninstall) and encryption keys for tests.
PARTNER_SECRET = "whsec_" + base64.b64encode(b"likely-partner-secret-0123456789ab").decode()
SECRET_KEY = base64.urlsafe_b64encode(b"likely test encryption key #1 ..").decode()
OLD_SECRET_KEY = base64.urlsafe_b64encode(b"likely test encryption key #0 ..").decode()
