"""Verifying senders that cannot sign with Standard Webhooks, each in its own documented way.

- Segment (Webhooks destination, https://segment.com/docs/connections/destinations/catalog/actions-webhook/):
  with a shared secret set, Segment signs each request with `X-Signature`, the hex HMAC-SHA1 of
  the body under that secret.
- CleverTap webhooks (https://developer.clevertap.com/docs/webhooks) carry no signature; they
  can send HTTP Basic credentials, checked against the workspace's CleverTap webhook password.
- SendGrid's Signed Event Webhook
  (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
  `X-Twilio-Email-Event-Webhook-Signature`, a base64 ECDSA (P-256, SHA-256) signature of the
  `X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body, verified with the
  public key SendGrid shows (base64 DER).

A request signed the Standard Webhooks way is accepted on every one of these endpoints too.
Without a `webhook-id`, a delivery is named by the hash of its body, so a redelivered body is
recorded once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from flask import request

from plugin import store, workspace_settings, workspaces
from plugin.api.security import verify_webhook
from plugin.errors import Forbidden, LikelyError, Unauthorized
from plugin.workspaces import Workspace

REASONS = {
    "no_secret": "no secret or key for this sender is configured in the workspace settings (inbound)",
    "missing_signature": "the request carries no signature this endpoint accepts",
    "bad_signature": "the signature does not match the body",
    "bad_credentials": "the credentials are not valid",
    "bad_key": "the configured verification key is not a valid public key",
}


def _refuse(reason: str) -> Unauthorized:
    return Unauthorized(f"the webhook could not be verified: {REASONS[reason]}", code="invalid_signature",
                        details={"reason": reason})


def _workspace_and_settings(slug: str) -> tuple[Workspace, dict]:
    with store.engine().connect() as conn:
        try:
            workspace = workspaces.get(conn, slug)
        except LikelyError:
            raise _refuse("missing_signature") from None  # do not reveal which workspaces exist
        inbound = workspace_settings.read(conn, workspace.id).get("inbound")
    return workspace, inbound if isinstance(inbound, dict) else {}


def _body_id(prefix: str) -> str:
    return f"{prefix}:{hashlib.sha256(request.get_data(cache=True)).hexdigest()}"


def _active(workspace: Workspace) -> Workspace:
    if not workspace.active:
        raise Forbidden("this workspace is uninstalled; install it again to send data",
                        code="workspace_uninstalled")
    return workspace


def verify_segment(slug: str) -> tuple[Workspace, str]:
    if request.headers.get("webhook-signature"):
        return verify_webhook(slug)
    workspace, inbound = _workspace_and_settings(slug)
    secret = inbound.get("segment_shared_secret")
    given = request.headers.get("X-Signature", "").strip().lower()
    if not given:
        raise _refuse("missing_signature")
    if not secret:
        raise _refuse("no_secret")
    expected = hmac.new(secret.encode(), request.get_data(cache=True), hashlib.sha1).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _refuse("bad_signature")
    return _active(workspace), _body_id("segment")


def verify_clevertap(slug: str) -> tuple[Workspace, str]:
    if request.headers.get("webhook-signature"):
        return verify_webhook(slug)
    workspace, inbound = _workspace_and_settings(slug)
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise _refuse("missing_signature")
    password = inbound.get("clevertap_webhook_password")
    if not password:
        raise _refuse("no_secret")
    if not hmac.compare_digest((auth.password or "").encode(), password.encode()):
        raise _refuse("bad_credentials")
    return _active(workspace), _body_id("clevertap")


def verify_sendgrid(slug: str) -> tuple[Workspace, str]:
    if request.headers.get("webhook-signature"):
        return verify_webhook(slug)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    workspace, inbound = _workspace_and_settings(slug)
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if not signature or not timestamp:
        raise _refuse("missing_signature")
    key_text = inbound.get("sendgrid_verification_key")
    if not key_text:
        raise _refuse("no_secret")
    try:
        key = load_der_public_key(base64.b64decode("".join(key_text.split())))
    except (ValueError, binascii.Error, TypeError):
        raise _refuse("bad_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _refuse("bad_key")
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + request.get_data(cache=True),
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise _refuse("bad_signature") from None
    return _active(workspace), _body_id("sendgrid")
