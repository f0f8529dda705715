"""From claimed outbox rows to what a connector takes: rendered messages or audience members.

Everything is re-read at send time — the user's attributes, consent and addresses, the
campaign's templates — so consent withdrawn after planning is honoured and a message goes to
the newest address. A row that cannot be sent now is settled on the spot, with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Connection, select

from connectors import Member, Message
from plugin.campaigns import channels, keys, templates
from plugin.campaigns.outbox import Outcome
from plugin.engagement import unsubscribes
from plugin.store import is_postgres
from plugin.store.tables import campaigns, dead_addresses, predictions, scores, users


@dataclass
class Prepared:
    """One row ready for its connector."""

    row: Any
    connector: str
    item: Message | Member
    audience_id: str | None = None
    address: str | None = None  # the push token or email used, to retire it if invalid
    other_addresses: int = 0    # further live push tokens to fall back on


@dataclass
class Context:
    """What a batch of one workspace's rows needs, read in a few set-based queries."""

    campaigns: dict[int, Any]
    prediction_names: dict[int, str]
    users: dict[int, Any]
    categories: dict[tuple[int, int], str]
    dead: set[tuple[str, str]] = field(default_factory=set)
    unsubscribe_link: Callable[..., str] | None = None  # (host user id, channel, message key) → link
    opted_out: set[tuple[int, str]] = field(default_factory=set)


def load_context(conn: Connection, workspace_id: int, rows: Sequence[Any]) -> Context:
    campaign_ids = {r.campaign_id for r in rows}
    user_ids = sorted({r.user_id for r in rows})
    found = {c.id: c for c in conn.execute(select(campaigns).where(
        campaigns.c.id.in_(campaign_ids), campaigns.c.workspace_id == workspace_id))}
    prediction_ids = {c.prediction_id for c in found.values()}
    names = dict(conn.execute(select(predictions.c.id, predictions.c.name)
                              .where(predictions.c.id.in_(prediction_ids))).all())
    people, categories, dead = {}, {}, set()
    pg = is_postgres(conn)
    for start in range(0, len(user_ids), 5000):
        chunk = user_ids[start:start + 5000]
        people.update({u.id: u for u in conn.execute(
            select(users.c.id, users.c.external_id, users.c.attributes)
            .where(users.c.workspace_id == workspace_id, keys.user_id_in(users.c.id, chunk, pg)))})
        categories.update({(p, u): c for p, u, c in conn.execute(
            select(scores.c.prediction_id, scores.c.user_id, scores.c.category)
            .where(scores.c.prediction_id.in_(prediction_ids), keys.user_id_in(scores.c.user_id, chunk, pg)))})
        dead.update((ch, h) for ch, h in conn.execute(
            select(dead_addresses.c.channel, dead_addresses.c.address_hash)
            .where(dead_addresses.c.workspace_id == workspace_id,
                   keys.user_id_in(dead_addresses.c.user_id, chunk, pg))))
    opted_out = unsubscribes.opted_out_users(conn, workspace_id, user_ids)
    link = unsubscribes.link_maker(conn, workspace_id, channels.unsubscribe_url(conn, workspace_id))
    return Context(found, names, people, categories, dead, link, opted_out)


def prepare(context: Context, rows: Sequence[Any], now_ts: int) -> tuple[list[Outcome], list[Prepared]]:
    """Settle what cannot be sent; build the rest."""
    settled: list[Outcome] = []
    ready: list[Prepared] = []
    for row in rows:
        try:
            ready.append(_prepare_one(context, row))
        except _Settle as outcome:
            settled.append(Outcome(row.run_id, row.user_id, row.channel, outcome.status, outcome.reason,
                                   next_attempt_at=now_ts))
    return settled, ready


class _Settle(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _prepare_one(context: Context, row: Any) -> Prepared:
    campaign = context.campaigns.get(row.campaign_id)
    user = context.users.get(row.user_id)
    if campaign is None or campaign.status == "archived":
        raise _Settle("skipped", "campaign_archived")
    if user is None:
        raise _Settle("skipped", "user_erased")
    tier = campaign.tiers[row.tier]
    action = next((a for a in tier["channels"] if a["channel"] == row.channel), None)
    if action is None:
        raise _Settle("dead", "channel_removed_from_tier")
    attributes = user.attributes or {}
    reason = channels.skip_reason(row.channel, attributes)
    if (row.user_id, row.channel) in context.opted_out:  # opted out since the run was planned
        reason = "unsubscribed"
    if reason:
        raise _Settle("skipped", reason)
    address, others = _address(context, row.channel, attributes, user.external_id)
    if row.channel == "ads":
        return Prepared(row, row.connector, channels.member(user.external_id, attributes),
                        audience_id=action["audience_id"])
    unsubscribe_url = _unsubscribe(context, user.external_id, row.channel, row.idempotency_key)
    rendered = _render(context, campaign, tier, action, row, user, unsubscribe_url)
    data = {"likely_campaign": campaign.name, "likely_tier": tier["name"]}
    if row.channel == "webhook":
        data.update({"user_id": user.external_id, "offer": tier["offer"], **rendered})
    message = Message(idempotency_key=row.idempotency_key, recipient_id=user.external_id,
                      address=address, subject=rendered.get("subject"), text=rendered.get("text"),
                      html=rendered.get("html"), data=data,
                      unsubscribe_url=unsubscribe_url)
    return Prepared(row, row.connector, message, address=address, other_addresses=others)


def _address(context: Context, channel: str, attributes: Mapping[str, Any],
             external_id: str) -> tuple[str, int]:
    """The address to deliver to, and how many more live ones there are (push devices)."""
    if channel == "email":
        email = channels.email_address(attributes)
        if not email:
            raise _Settle("skipped", "not_reachable")
        if ("email", channels.address_hash(email)) in context.dead:
            raise _Settle("skipped", "invalid_address")
        return email, 0
    if channel == "push":
        tokens = channels.push_tokens(attributes)
        if not tokens:
            raise _Settle("skipped", "not_reachable")
        live = [t for t in tokens if ("push", channels.address_hash(t)) not in context.dead]
        if not live:
            raise _Settle("skipped", "invalid_push_token")
        return live[-1], len(live) - 1  # the most recently registered device first
    if channel == "ads" and not (channels.email_address(attributes) or _text(attributes, "phone")):
        raise _Settle("skipped", "not_reachable")
    return external_id, 0


def _render(context: Context, campaign: Any, tier: dict, action: dict, row: Any, user: Any,
            unsubscribe_url: str | None) -> dict[str, str]:
    source = {k: v for k, v in (action.get("template") or {}).items() if v}
    category = context.categories.get((campaign.prediction_id, row.user_id), tier["name"])
    values = templates.message_context(user.attributes or {}, user.external_id, row.score, category,
                                       context.prediction_names.get(campaign.prediction_id, ""),
                                       tier["offer"], tier["name"], campaign.name, unsubscribe_url)
    try:
        return templates.render(source, values)
    except templates.TemplateProblem as problem:
        if problem.kind == "budget":  # this user's data made the render too big: skip only them
            raise _Settle("skipped", problem.code) from None
        raise _Settle("dead", f"template_error: {problem.field}: {problem.describe()}") from None


def _unsubscribe(context: Context, external_id: str, channel: str, key: str) -> str | None:
    return context.unsubscribe_link(external_id, channel, key) if context.unsubscribe_link else None


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return value if isinstance(value, str) and value else None
