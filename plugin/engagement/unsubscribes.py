"""Opt-outs per channel: stored, signed into one-click links, honoured, written back.

A link is `<public_url>/unsubscribe/<token>`; the token names the workspace, the host's user
id and the channel, signed with HMAC-SHA256 under a key derived from LIKELY_SECRET_KEY (every
configured key verifies, so links in sent mail survive a key rotation). Nothing is guessable:
without the key no token for another user can be made.

An opt-out is written back to the host where the workspace has a host connector, in the host's
own subscription fields: Braze `email_subscribe` / `push_subscribe` = "unsubscribed"
(https://www.braze.com/docs/api/objects_filters/user_attributes_object/), CleverTap
`MSG-email` / `MSG-push` / `MSG-sms` = false
(https://developer.clevertap.com/docs/upload-user-profiles-api); other hosts get
`likely_unsubscribed_<channel>: true`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any, Callable
from urllib.parse import quote

from sqlalchemy import ColumnElement, Connection, Engine, exists, select, update

from plugin.store import is_postgres, transaction
from plugin.store.tables import unsubscribes, users, workspaces
from plugin.store.types import utcnow

log = logging.getLogger(__name__)
PURPOSE = "likely unsubscribe link"
CHANNELS = ("email", "push", "in_app", "sms", "webhook", "ads")
HOST_FIELDS = {
    "braze": {"email": ("email_subscribe", "unsubscribed"), "push": ("push_subscribe", "unsubscribed")},
    "clevertap": {"email": ("MSG-email", False), "push": ("MSG-push", False), "sms": ("MSG-sms", False)},
}


class BadToken(Exception):
    """An unsubscribe token that was not made by us (or was altered)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keys() -> list[bytes]:
    from plugin import crypto
    return crypto.current().derived(PURPOSE)


def make_token(workspace_slug: str, external_id: str, channel: str, message_key: str | None = None) -> str:
    """The link's token; `message_key` (the outbox idempotency key) credits the opt-out to its message."""
    payload = _b64(json.dumps([workspace_slug, external_id, channel, message_key],
                              separators=(",", ":")).encode())
    signature = _b64(hmac.new(_keys()[0], payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def read_token(token: str) -> tuple[str, str, str, str | None]:
    """(workspace slug, host user id, channel, message key) of a token we signed; else BadToken."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 2048:
        raise BadToken("malformed")
    try:
        given = _unb64(signature)
        if not any(hmac.compare_digest(given, hmac.new(k, payload.encode(), hashlib.sha256).digest())
                   for k in _keys()):
            raise BadToken("signature")
        slug, external_id, channel, key = json.loads(_unb64(payload))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadToken("malformed") from None
    if channel not in CHANNELS or not isinstance(slug, str) or not isinstance(external_id, str) \
            or not (key is None or isinstance(key, str)):
        raise BadToken("malformed")
    return slug, external_id, channel, key


def public_url() -> str | None:
    """Where this deployment is reached from outside (LIKELY_PUBLIC_URL), for links in messages."""
    from plugin import settings
    value = settings.current().get("public_url")
    return value.rstrip("/") if isinstance(value, str) and value else None


def link_maker(conn: Connection, workspace_id: int,
               host_template: str | None) -> Callable[[str, str, str | None], str] | None:
    """A function (host user id, channel, message key) → unsubscribe link, or None.

    Our own signed link when LIKELY_PUBLIC_URL is set; else the host's `unsubscribe_url`
    template from the workspace settings (its `{user_id}` replaced); else none.
    """
    base = public_url()
    if base:
        slug = conn.execute(select(workspaces.c.slug).where(workspaces.c.id == workspace_id)).scalar_one()
        return lambda external_id, channel, key=None: f"{base}/unsubscribe/{make_token(slug, external_id, channel, key)}"
    if host_template:
        return lambda external_id, channel, key=None: host_template.replace("{user_id}", quote(external_id, safe=""))
    return None


def opt_out(conn: Connection, workspace_id: int, user_id: int, channel: str, source: str) -> bool:
    """Record the opt-out (once); True when it is new."""
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    result = conn.execute(insert(unsubscribes).values(
        workspace_id=workspace_id, user_id=user_id, channel=channel, source=source[:32],
        created_at=utcnow()).on_conflict_do_nothing())
    return bool(result.rowcount)


def opted_out(workspace_id: int, user_id: ColumnElement, channel: str) -> ColumnElement:
    """SQL: the user has opted out of the channel (for the planner and syncs)."""
    return exists().where(unsubscribes.c.workspace_id == workspace_id, unsubscribes.c.user_id == user_id,
                          unsubscribes.c.channel == channel)


def is_opted_out(conn: Connection, workspace_id: int, user_id: int, channel: str) -> bool:
    return conn.execute(select(unsubscribes.c.user_id).where(
        unsubscribes.c.workspace_id == workspace_id, unsubscribes.c.user_id == user_id,
        unsubscribes.c.channel == channel)).first() is not None


def opted_out_users(conn: Connection, workspace_id: int, user_ids: list[int]) -> set[tuple[int, str]]:
    """(user, channel) pairs among these users that opted out."""
    found: set[tuple[int, str]] = set()
    for start in range(0, len(user_ids), 5000):
        found.update(conn.execute(select(unsubscribes.c.user_id, unsubscribes.c.channel).where(
            unsubscribes.c.workspace_id == workspace_id,
            unsubscribes.c.user_id.in_(user_ids[start:start + 5000]))).all())
    return found


def host_attributes(platform: str, channel: str) -> dict[str, Any]:
    field, value = HOST_FIELDS.get(platform, {}).get(channel, (f"likely_unsubscribed_{channel}", True))
    return {field: value}


def write_back(engine: Engine, workspace_id: int | None = None, *,
               connector_options: dict | None = None, limit: int = 1000) -> dict[str, int]:
    """Write opt-outs not yet written to each workspace's host connector."""
    import connectors
    from connectors import UserAttributes
    from plugin.campaigns import channels
    counts = {"written": 0, "failed": 0, "no_host_connector": 0}
    query = (select(unsubscribes.c.workspace_id, unsubscribes.c.user_id, unsubscribes.c.channel,
                    users.c.external_id)
             .select_from(unsubscribes.join(users, users.c.id == unsubscribes.c.user_id))
             .where(unsubscribes.c.written_back_at.is_(None)))
    if workspace_id is not None:
        query = query.where(unsubscribes.c.workspace_id == workspace_id)
    with engine.connect() as conn:
        pending = conn.execute(query.order_by(unsubscribes.c.workspace_id).limit(limit)).all()
    by_workspace: dict[int, list] = {}
    for row in pending:
        by_workspace.setdefault(row.workspace_id, []).append(row)
    for ws, rows in by_workspace.items():
        with engine.connect() as conn:
            settings = channels.connector_settings(conn, ws)
        try:
            hosts = connectors.by_channel(connectors.enabled(
                {k: v for k, v in settings.items() if k in connectors.CONNECTORS},
                **(connector_options or {})), "host")
        except connectors.ConfigurationError:
            hosts = {}
        if not hosts:
            counts["no_host_connector"] += len(rows)
            continue
        name = sorted(hosts)[0]
        host = hosts[name]
        try:
            items = [UserAttributes(f"u:{r.user_id}:{r.channel}", r.external_id,
                                    host_attributes(name, r.channel)) for r in rows]
            results = {res.key: res for res in host.update_users(attributes=items)}
        finally:
            for connector in hosts.values():
                connector.close()
        with transaction(engine) as conn:
            for r in rows:
                result = results.get(f"u:{r.user_id}:{r.channel}")
                ok = result is not None and result.status == "sent"
                counts["written" if ok else "failed"] += 1
                conn.execute(update(unsubscribes).where(
                    unsubscribes.c.workspace_id == ws, unsubscribes.c.user_id == r.user_id,
                    unsubscribes.c.channel == r.channel).values(
                    written_back_at=utcnow() if ok else None,
                    write_back_error=None if ok else ((result.reason if result else "no_result") or "")[:300]))
    return counts
