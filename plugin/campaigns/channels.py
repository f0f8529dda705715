"""Channels: a workspace's connector settings, its frequency caps, and who is reachable how.

`connector_settings` is the one place campaign code reads connector settings from.
Reachability follows the audiences' `reachable` filter: consent counts as given unless the
user's `<channel>_consent` attribute is false, and `unsubscribed: true` stops every channel.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from sqlalchemy import Connection

import connectors

CONSENT = {"email": "email_consent", "push": "push_consent", "in_app": "in_app_consent",
           "ads": "ads_consent"}
PERIOD_SECONDS = {"day": 86_400, "week": 7 * 86_400}

# The workspace settings campaigns read besides `connectors`, as JSON Schema for the manifest.
SETTINGS_SCHEMA = {
    "unsubscribe_url": {
        "type": "string", "pattern": "^https://", "title": "One-click unsubscribe URL",
        "description": "HTTPS URL of the host's unsubscribe endpoint; {user_id} is replaced by the user's id."},
    "frequency_caps": {
        "type": "object", "title": "Frequency caps per channel (\"*\": every other channel)",
        "propertyNames": {"enum": ["email", "push", "in_app", "ads", "webhook", "*"]},
        "additionalProperties": {
            "type": "object", "required": ["max_messages"], "additionalProperties": False,
            "properties": {"max_messages": {"type": "integer", "minimum": 0},
                           "period": {"enum": list(PERIOD_SECONDS), "default": "day"}}}},
}


def workspace_settings(conn: Connection, workspace_id: int) -> dict:
    """The workspace's settings with secret fields decrypted (they are stored encrypted)."""
    from plugin import workspace_settings as stored
    return stored.read(conn, workspace_id)


def connector_settings(conn: Connection, workspace_id: int) -> dict:
    """The workspace's `connectors` settings: {connector name: section}."""
    section = workspace_settings(conn, workspace_id).get("connectors")
    return section if isinstance(section, dict) else {}


def frequency_caps(conn: Connection, workspace_id: int) -> dict[str, tuple[int, int]]:
    """{channel: (max messages, window seconds)} from `frequency_caps` in workspace settings.

    Shape: {"email": {"max_messages": 2, "period": "week"}, "*": {...}}; "*" is every channel
    without its own entry. Counted per user and channel over a rolling window, across campaigns.
    """
    raw = workspace_settings(conn, workspace_id).get("frequency_caps")
    caps: dict[str, tuple[int, int]] = {}
    if not isinstance(raw, dict):
        return caps
    for channel, rule in raw.items():
        if not isinstance(rule, dict):
            continue
        limit, period = rule.get("max_messages"), rule.get("period", "day")
        if isinstance(limit, int) and limit >= 0 and period in PERIOD_SECONDS:
            caps[channel] = (limit, PERIOD_SECONDS[period])
    return caps


def cap_for(caps: Mapping[str, tuple[int, int]], channel: str) -> tuple[int, int] | None:
    return caps.get(channel) or caps.get("*")


def unsubscribe_url(conn: Connection, workspace_id: int) -> str | None:
    """`unsubscribe_url` template from workspace settings; `{user_id}` is the host's user id."""
    value = workspace_settings(conn, workspace_id).get("unsubscribe_url")
    return value if isinstance(value, str) else None


def build(conn: Connection, workspace_id: int, **options: Any) -> dict[str, connectors.Connector]:
    """The workspace's enabled connectors; ConfigurationError when its settings are invalid."""
    return connectors.enabled(connector_settings(conn, workspace_id), **options)


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def skip_reason(channel: str, attributes: Mapping[str, Any]) -> str | None:
    """Why a user cannot get a message on `channel` now (consent withdrawn since planning…)."""
    if attributes.get("unsubscribed") is True:
        return "unsubscribed"
    consent = CONSENT.get(channel)
    if consent and attributes.get(consent) is False:
        return "no_consent"
    return None


def email_address(attributes: Mapping[str, Any]) -> str | None:
    value = attributes.get("email")
    return value.strip() if isinstance(value, str) and value.strip() else None


def member(external_id: str, attributes: Mapping[str, Any]) -> connectors.Member:
    """A user as ad platforms and host cohorts know them (raw: the connector hashes).

    Which attribute feeds which key: docs/ads-identifiers.md."""
    def text(name: str) -> str | None:
        value = attributes.get(name)
        return value if isinstance(value, str) and value else None
    return connectors.Member(member_id=external_id, email=email_address(attributes), phone=text("phone"),
                             first_name=text("first_name"), last_name=text("last_name"),
                             city=text("city"), state=text("state"), zip=text("zip"),
                             country=text("country"), madid=text("madid"), extern_id=external_id,
                             gender=text("gender"), date_of_birth=text("date_of_birth"))


def push_tokens(attributes: Mapping[str, Any]) -> list[str]:
    tokens = attributes.get("push_tokens")
    return [t for t in tokens if isinstance(t, str) and t] if isinstance(tokens, list) else []
