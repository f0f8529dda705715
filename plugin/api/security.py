"""Standard Webhooks verification and API-key authentication.

The environment's secrets and keys belong to the `default` workspace (the embedded
default); other workspaces keep theirs in the store (keys hashed, secrets encrypted).
Install and uninstall are signed with a partner secret (LIKELY_PARTNER_SECRETS) that the
host platform as a whole shares with likely, since the workspace does not exist yet.
"""
from __future__ import annotations

import binascii
import hmac
import re
import time

from flask import current_app, g, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from plugin import store, workspaces
from plugin.errors import Forbidden, LikelyError, Unauthorized
from plugin.observability.metrics import record_webhook_verification_failed
from plugin.workspaces import Workspace


def webhook_secrets_for(conn, workspace: Workspace) -> list[str]:
    secrets = workspaces.stored_webhook_secrets(conn, workspace)
    if workspace.slug == workspaces.DEFAULT:
        secrets = list(current_app.config["LIKELY"].get("webhook_secrets", [])) + secrets
    return secrets


# Our own words for why a signature was refused (never the library's wording, which changes
# between releases): a stable `details.reason` code and a sentence a host developer can act on.
SIGNATURE_REASONS = {
    "no_secret": "no signing secret is configured for this receiver",
    "missing_headers": "the webhook-id, webhook-timestamp and webhook-signature headers are all required",
    "malformed_timestamp": "webhook-timestamp must be whole seconds since the Unix epoch",
    "stale_timestamp": "webhook-timestamp is more than five minutes from now",
    "malformed_signature": "webhook-signature must hold space-separated 'v1,<base64 HMAC-SHA256>' entries",
    "no_matching_signature": "no signature matches the body under any configured secret",
}
TOLERANCE_SECONDS = 5 * 60
_SIGNATURE_ENTRY = re.compile(r"^v1,[A-Za-z0-9+/]+={0,2}$")


def _refusal_reason(headers: dict[str, str]) -> str:
    """Classify a refused request from its headers alone (the HMAC itself is the library's)."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not (webhook_id and timestamp and signature):
        return "missing_headers"
    if not timestamp.strip().isdigit():
        return "malformed_timestamp"
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return "stale_timestamp"
    if not any(_SIGNATURE_ENTRY.match(entry) for entry in signature.split(" ")):
        return "malformed_signature"
    return "no_matching_signature"


def _verify_signature(secrets: list[str]) -> str:
    """Return the request's webhook id if any secret signed it (rotation), else raise 401.

    The library compares in constant time and enforces the five-minute tolerance; the reason
    given to the caller is ours, derived from the headers.
    """
    body = request.get_data(cache=True)
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return headers["webhook-id"]
        except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError):
            continue
    _count_failed_verification()
    reason = _refusal_reason(headers) if secrets else "no_secret"
    raise Unauthorized(f"the webhook signature could not be verified: {SIGNATURE_REASONS[reason]}",
                       code="invalid_signature", details={"reason": reason})


def _count_failed_verification() -> None:
    # Labelled by route rule (not raw path) so per-workspace paths share one series.
    record_webhook_verification_failed(request.url_rule.rule if request.url_rule else "<unmatched>")


def verify_webhook(workspace_slug: str) -> tuple[Workspace, str]:
    """Verify the request's signature for the workspace; return it and the webhook id."""
    with store.engine().connect() as conn:
        try:
            workspace = workspaces.get(conn, workspace_slug)
        except LikelyError:
            # Do not reveal which workspaces exist to an unsigned caller.
            _count_failed_verification()
            raise Unauthorized("the webhook signature could not be verified", code="invalid_signature") from None
        secrets = webhook_secrets_for(conn, workspace)
    webhook_id = _verify_signature(secrets)
    if not workspace.active:
        # Told only to a caller who proved it holds the workspace's secret.
        raise Forbidden("this workspace is uninstalled; install it again to send data",
                        code="workspace_uninstalled")
    return workspace, webhook_id


def verify_partner_webhook() -> str:
    """Verify a host-level webhook (install, uninstall) against the partner secrets."""
    secrets = list(current_app.config["LIKELY"].get("partner_secrets", []))
    return _verify_signature(secrets)


def authenticate_api_key() -> Workspace:
    """Resolve `Authorization: Bearer <key>` to its workspace, or raise 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>", code="missing_credentials")
    workspace = workspace_for_key(key)
    if workspace is None:
        raise Unauthorized("the API key is not valid", code="invalid_credentials")
    g.workspace = workspace
    return workspace


def workspace_for_key(key: str) -> Workspace | None:
    """The active workspace an API key (configured or stored) belongs to."""
    configured = current_app.config["LIKELY"].get("api_keys", [])
    with store.reading(store.engine()) as conn:
        if any(hmac.compare_digest(key.encode(), candidate.encode()) for candidate in configured):
            workspace = workspaces.get(conn, workspaces.DEFAULT)
            return workspace if workspace.active else None
        return workspaces.workspace_for_api_key(conn, key)
