"""Recording engagement on outbox rows: first time seen wins, set-based per batch.

An engagement names its message by the outbox idempotency key (SendGrid's `custom_args`, or
`likely_idempotency_key` in a push / in-app payload's data the host echoes back), or — when
the host's event carries no key — by user and channel: the latest message sent to that user on
that channel before the event. Hard bounces and spam reports retire the address (it is never
used again); spam reports and unsubscribes also record an opt-out of the channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import Connection, and_, func, select

from plugin.engagement import unsubscribes
from plugin.store import is_postgres
from plugin.store.tables import dead_addresses, outbox, outbox_engagement, users
from plugin.store.types import utcnow

KINDS = ("delivered", "opened", "clicked", "bounced", "dropped", "complained", "unsubscribed")
# An open implies delivery, a click an open: some clients load no images, so a click may
# arrive with no open before it.
IMPLIED = {"opened": ("delivered",), "clicked": ("opened", "delivered")}
CHUNK = 1_000


@dataclass(frozen=True)
class Engagement:
    """One thing that happened to a message; `key` or (`user_id`, `channel`) names it."""

    kind: str
    ts: int
    key: str | None = None
    user_id: int | None = None      # our store id
    channel: str | None = None
    bounce: str | None = None       # hard | soft, for bounces
    address: str | None = None      # the address it concerned (to retire it)


def record(conn: Connection, workspace_id: int, engagements: Sequence[Engagement]) -> int:
    """Apply engagements to their outbox rows; return how many found their message."""
    keyed = [e for e in engagements if e.key]
    by_user = [e for e in engagements if not e.key and e.user_id is not None and e.channel]
    found: list[tuple[tuple[int, int, str], Engagement]] = []
    for start in range(0, len(keyed), CHUNK):
        chunk = keyed[start:start + CHUNK]
        query = (select(outbox.c.idempotency_key, outbox.c.run_id, outbox.c.user_id, outbox.c.channel)
                 .where(outbox.c.workspace_id == workspace_id,
                        outbox.c.idempotency_key.in_({e.key for e in chunk})))
        if all(e.user_id is not None for e in chunk):
            # Narrowed by user, the lookup reads the outbox's user index, not the whole table.
            query = query.where(outbox.c.user_id.in_({e.user_id for e in chunk}))
        rows = conn.execute(query)
        named = {k: (r, u, c) for k, r, u, c in rows}
        found += [(named[e.key], e) for e in chunk if e.key in named]
    found += _latest_sent(conn, workspace_id, by_user)
    _apply(conn, workspace_id, found)
    _suppress(conn, workspace_id, found)
    return len(found)


def _latest_sent(conn: Connection, workspace_id: int, engagements: list[Engagement]) -> list:
    """For each engagement, the latest message sent to its user on its channel before it
    (one query per 1,000 users, read through the outbox's user index)."""
    found = []
    users_wanted = sorted({e.user_id for e in engagements})
    for start in range(0, len(users_wanted), CHUNK):
        chunk = users_wanted[start:start + CHUNK]
        sent: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for run_id, user_id, channel, sent_ts in conn.execute(
                select(outbox.c.run_id, outbox.c.user_id, outbox.c.channel, outbox.c.sent_ts)
                .where(outbox.c.workspace_id == workspace_id, outbox.c.user_id.in_(chunk),
                       outbox.c.status == "sent", outbox.c.sent_ts.is_not(None))):
            sent.setdefault((user_id, channel), []).append((sent_ts, run_id))
        wanted = set(chunk)
        for e in engagements:
            if e.user_id not in wanted:
                continue
            before = [item for item in sent.get((e.user_id, e.channel), ()) if item[0] <= e.ts]
            if before:
                found.append(((max(before)[1], e.user_id, e.channel), e))
    return found


def _apply(conn: Connection, workspace_id: int, found: list) -> None:
    merged: dict[tuple, dict] = {}
    for ident, e in found:
        values = merged.setdefault(ident, {})
        for kind in (e.kind, *IMPLIED.get(e.kind, ())):
            column = f"{kind}_ts"
            values[column] = min(values.get(column, e.ts), e.ts)
        if e.kind == "bounced" and e.bounce:
            values["bounce"] = e.bounce
    if not merged:
        return
    insert = (_dialect_insert(conn))(outbox_engagement)
    now = int(utcnow().timestamp())
    rows = [{"run_id": r, "user_id": u, "channel": c, "workspace_id": workspace_id, "updated_ts": now,
             **{f"{k}_ts": None for k in KINDS}, "bounce": None, **values}
            for (r, u, c), values in merged.items()]
    excluded = insert.excluded
    # The first time seen wins: an earlier event arriving late still moves the time back.
    # (PostgreSQL's least() skips NULLs, SQLite's min() returns NULL: coalesce covers both.)
    least = func.least if is_postgres(conn) else func.min
    update = {}
    for kind in KINDS:
        stored, incoming = outbox_engagement.c[f"{kind}_ts"], excluded[f"{kind}_ts"]
        update[f"{kind}_ts"] = func.coalesce(least(stored, incoming), stored, incoming)
    update["bounce"] = func.coalesce(excluded.bounce, outbox_engagement.c.bounce)
    update["updated_ts"] = excluded.updated_ts
    conn.execute(insert.on_conflict_do_update(index_elements=["run_id", "user_id", "channel"], set_=update),
                 rows)


def _suppress(conn: Connection, workspace_id: int, found: list) -> None:
    """Hard bounces and spam reports retire the address; spam reports and unsubscribes opt out."""
    retire = [(ident, e) for ident, e in found
              if (e.kind == "bounced" and e.bounce == "hard") or e.kind == "complained"]
    opt_out = [(ident, e) for ident, e in found if e.kind in ("complained", "unsubscribed")]
    if retire:
        from plugin.campaigns.channels import address_hash  # the one hashing rule for addresses
        addresses = _addresses(conn, workspace_id, [ident for ident, e in retire if not e.address])
        insert = _dialect_insert(conn)(dead_addresses).on_conflict_do_nothing()
        values = []
        for (_run_id, user_id, channel), e in retire:
            address = e.address or addresses.get(user_id)
            if address:
                values.append({"workspace_id": workspace_id, "channel": channel,
                               "address_hash": address_hash(address), "user_id": user_id,
                               "reason": "hard_bounce" if e.kind == "bounced" else "spam_report",
                               "created_at": utcnow()})
        if values:
            conn.execute(insert, values)
    for (_run_id, user_id, channel), e in opt_out:
        unsubscribes.opt_out(conn, workspace_id, user_id, channel,
                             "spam_report" if e.kind == "complained" else "provider")


def _addresses(conn: Connection, workspace_id: int, idents: list) -> dict[int, str]:
    ids = {u for _, u, _ in idents}
    if not ids:
        return {}
    rows = conn.execute(select(users.c.id, users.c.attributes).where(
        users.c.workspace_id == workspace_id, users.c.id.in_(ids)))
    return {uid: (attrs or {}).get("email") for uid, attrs in rows if isinstance((attrs or {}).get("email"), str)}


def _dialect_insert(conn: Connection):
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def counts_by_tier(conn: Connection, run_ids: Sequence[int]) -> dict[tuple[int, str], dict[str, int]]:
    """{(tier, channel): {delivered, opened, clicked, bounced, dropped, complained, unsubscribed}}."""
    if not run_ids:
        return {}
    e = outbox_engagement
    columns = [func.count(getattr(e.c, f"{k}_ts")).label(k) for k in KINDS]
    rows = conn.execute(select(outbox.c.tier, outbox.c.channel, *columns)
                        .select_from(outbox.join(e, and_(e.c.run_id == outbox.c.run_id,
                                                         e.c.user_id == outbox.c.user_id,
                                                         e.c.channel == outbox.c.channel)))
                        .where(outbox.c.run_id.in_(list(run_ids)))
                        .group_by(outbox.c.tier, outbox.c.channel))
    return {(r.tier, r.channel): {k: int(getattr(r, k)) for k in KINDS} for r in rows}
