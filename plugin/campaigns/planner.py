"""Planning a run: one set-based INSERT … SELECT per (tier, channel) writes the outbox.

Each statement reads the tier's band from `scores`, joins `users` for reachability and consent,
and writes one row per user: `pending` to send (due at once, or at the user's local send time
outside quiet hours: see `send_time`), or `skipped` with the first reason that applies —
unsubscribed, no_consent, not_reachable, frequency_cap, control (the control group
is drawn last, from users who could have been messaged, so treatment and control compare).
Users already messaged (or held out) by an earlier run of the campaign are not written again:
they are counted per tier as `already_messaged` / `already_in_control`.
Nothing loops over users in Python; the idempotency key and the control bucket are computed
by the database (see `keys`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import aliased
from sqlalchemy.types import UserDefinedType

from plugin.audiences.compiler import compile_audience
from plugin.campaigns import bands, channels, keys, send_time
from plugin.engagement import unsubscribes
from plugin.store import bulk_cache, is_postgres
from plugin.store.tables import campaign_runs, outbox, scores, users

# Messages that count toward a cap: in flight and unknown ones may have reached the user.
COUNTED_STATUSES = ("pending", "sending", "sent", "failed", "held", "unknown")
DAY = 86_400
PG_WORK_MEM = "256MB"
COLUMNS = ("workspace_id", "campaign_id", "run_id", "tier", "user_id", "channel", "connector",
           "idempotency_key", "status", "reason", "score", "attempts", "next_attempt_at", "created_ts")


class Attributes:
    """Conditions on `users.attributes`, written for the connection's dialect."""

    def __init__(self, postgres: bool):
        self.pg = postgres

    def _path(self, name: str) -> str:
        return f"users.attributes -> '{name}'" if self.pg else f"users.attributes, '$.{name}'"

    # Every condition is made definite (true or false, never NULL for a missing attribute),
    # so that negating one never drops a user from both sides.
    def is_bool(self, name: str, value: bool) -> ColumnElement:
        word = "true" if value else "false"
        if self.pg:
            return literal_column(f"coalesce(({self._path(name)}) = '{word}'::jsonb, false)")
        return literal_column(f"coalesce(json_type({self._path(name)}) = '{word}', false)")

    def nonempty_text(self, name: str) -> ColumnElement:
        if self.pg:
            return literal_column(f"coalesce(jsonb_typeof({self._path(name)}) = 'string' "
                                  f"AND users.attributes ->> '{name}' <> '', false)")
        return literal_column(f"coalesce(json_type({self._path(name)}) = 'text' "
                              f"AND json_extract({self._path(name)}) <> '', false)")

    def nonempty_list(self, name: str) -> ColumnElement:
        if self.pg:
            return literal_column(f"(CASE WHEN jsonb_typeof({self._path(name)}) = 'array' "
                                  f"THEN jsonb_array_length({self._path(name)}) > 0 ELSE false END)")
        return literal_column(f"(coalesce(json_array_length({self._path(name)}), 0) > 0)")


def _reachable(attrs: Attributes, channel: str) -> ColumnElement | None:
    if channel == "email":
        return attrs.nonempty_text("email")
    if channel == "push":
        return attrs.nonempty_list("push_tokens")
    if channel == "ads":
        return or_(attrs.nonempty_text("email"), attrs.nonempty_text("phone"))
    return None  # in-app and webhook address the host's user id: always reachable


def _key(pg: bool, campaign_id: int, run_id: int, channel: str, user_id: ColumnElement) -> ColumnElement:
    name = (literal(f"{campaign_id}:{run_id}:") + cast(user_id, String)
            + literal(f":{channel}"))
    if pg:
        return cast(func.uuid_generate_v5(literal_column(f"'{keys.NAMESPACE}'::uuid"), name), String)
    return func.likely_uuid5(name)


class _Bit32(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIT(32)"


def _bucket(pg: bool, campaign_id: int) -> ColumnElement:
    name = literal(f"{campaign_id}:") + cast(scores.c.user_id, String)
    if pg:  # the first 32 bits of the md5, as an integer: ('x' || hex)::bit(32)::bigint
        return cast(cast(literal("x") + func.substr(func.md5(name), 1, 8), _Bit32()), BigInteger)
    return func.likely_bucket(name)


def _prior(campaign_id: int, run_id: int, cutoff: int | None, control: bool) -> ColumnElement:
    """An earlier run of the campaign messaged (or held out) this user, recently enough to count."""
    p = aliased(outbox, name="prior")
    kind = p.c.reason == "control" if control else p.c.status != "skipped"
    condition = [p.c.user_id == scores.c.user_id, p.c.campaign_id == campaign_id,
                 p.c.run_id != run_id, kind]
    if cutoff is not None:
        condition.append(p.c.created_ts > cutoff)
    return exists().where(*condition)


def _capped(workspace_id: int, channel: str, cap: tuple[int, int], now_ts: int) -> ColumnElement:
    limit, window = cap
    f = aliased(outbox, name="recent")
    recent = (select(func.count()).where(f.c.user_id == scores.c.user_id, f.c.workspace_id == workspace_id,
                                         f.c.channel == channel, f.c.status.in_(COUNTED_STATUSES),
                                         f.c.created_ts > now_ts - window)
              .scalar_subquery())
    return recent >= limit


def _population(campaign: Any, tier: dict, workspace_id: int, now_ts: int) -> list[ColumnElement]:
    where = [scores.c.prediction_id == campaign.prediction_id, scores.c.workspace_id == workspace_id,
             bands.band_condition(tier["band"])]
    if campaign.audience:
        where.append(scores.c.user_id.in_(compile_audience(campaign.audience, workspace_id, now_ts)))
    return where


def plan(conn: Connection, campaign: Any, run_id: int, now_ts: int) -> list[dict]:
    """Write the run's outbox rows; return per tier the users in the band (`targeted`) and those
    not written because an earlier run reached them (`already_messaged`, `already_in_control`)."""
    pg = is_postgres(conn)
    if pg:
        # Joining a band of a million scores to their users hashes in memory instead of in
        # batches spilled to disk (4 MB default); for this transaction only.
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
    else:
        keys.register_sqlite(conn)
    # A run writes up to millions of rows into the outbox's indexes.
    with bulk_cache(conn):
        return _plan(conn, campaign, run_id, now_ts, pg)


def _plan(conn: Connection, campaign: Any, run_id: int, now_ts: int, pg: bool) -> list[dict]:
    workspace_id = campaign.workspace_id
    attrs = Attributes(pg)
    caps = channels.frequency_caps(conn, workspace_id)
    # Local send time and quiet hours: each row is due when the user's own clock allows.
    timing = send_time.rules(campaign.schedule or {}, channels.workspace_settings(conn, workspace_id))
    due = send_time.due_expression(conn, workspace_id, now_ts, timing, pg)
    has_prior = conn.execute(select(campaign_runs.c.id).where(
        campaign_runs.c.campaign_id == campaign.id, campaign_runs.c.id != run_id).limit(1)).first() is not None
    cutoff = (now_ts - campaign.remessage_after_days * DAY
              if campaign.remessage_after_days is not None else None)
    summary = []
    for index, tier in enumerate(campaign.tiers):
        where = _population(campaign, tier, workspace_id, now_ts)
        already = {"already_messaged": 0, "already_in_control": 0}
        if has_prior:
            blocked = or_(_prior(campaign.id, run_id, cutoff, False), _prior(campaign.id, run_id, cutoff, True))
            already = _count_already(conn, where, campaign.id, run_id, cutoff)
            where.append(not_(blocked))
        # Every channel of a tier writes one row per user of the band: the first one's count is the band's.
        written = [_insert_rows(conn, campaign, run_id, index, tier, action, where, attrs, caps, pg, now_ts, due)
                   for action in tier["channels"]]
        summary.append({"tier": tier["name"], "targeted": written[0] + sum(already.values()), **already})
    return summary


def _insert_rows(conn, campaign, run_id, index, tier, action, where, attrs, caps, pg, now_ts, due) -> int:
    channel = action["channel"]
    rules = [(or_(attrs.is_bool("unsubscribed", True),
                  unsubscribes.opted_out(campaign.workspace_id, scores.c.user_id, channel)), "unsubscribed")]
    if channel in channels.CONSENT:
        rules.append((attrs.is_bool(channels.CONSENT[channel], False), "no_consent"))
    reachable = _reachable(attrs, channel)
    if reachable is not None:
        rules.append((not_(reachable), "not_reachable"))
    cap = channels.cap_for(caps, channel)
    if cap is not None:
        rules.append((_capped(campaign.workspace_id, channel, cap, now_ts), "frequency_cap"))
    share = float(tier.get("control_share") or 0)
    if share > 0:
        rules.append((_bucket(pg, campaign.id) < keys.threshold(share), "control"))
    reason = case(*rules, else_=None).label("reason")
    chosen = (select(scores.c.user_id, scores.c.score, reason, due.label("due"))
              .select_from(scores.join(users, users.c.id == scores.c.user_id))
              .where(*where)
              # In user order, the users lookups read the table sequentially and every outbox
              # index grows at its end (in score order both are random: 2-3x slower at 1M).
              .order_by(scores.c.user_id)
              # OFFSET 0 keeps both databases from inlining the subquery, which would make them
              # evaluate every rule twice (once for `reason`, once for `status`).
              .offset(0).subquery("chosen"))
    status = case((chosen.c.reason.is_(None), literal("pending")), else_=literal("skipped"))
    query = select(literal(campaign.workspace_id, Integer), literal(campaign.id, Integer),
                   literal(run_id, Integer), literal(index, Integer), chosen.c.user_id,
                   literal(channel, String), literal(action["connector"], String),
                   _key(pg, campaign.id, run_id, channel, chosen.c.user_id), status, chosen.c.reason,
                   chosen.c.score, literal(0, Integer), chosen.c.due, literal(now_ts, BigInteger))
    statement = insert(outbox).from_select(list(COLUMNS), query).execution_options(preserve_rowcount=True)
    return conn.execute(statement).rowcount


def _count_already(conn: Connection, where: list, campaign_id: int, run_id: int,
                   cutoff: int | None) -> dict[str, int]:
    messaged = _prior(campaign_id, run_id, cutoff, False)
    control = _prior(campaign_id, run_id, cutoff, True)
    row = conn.execute(select(
        func.count().filter(messaged),
        func.count().filter(and_(not_(messaged), control)))
        .select_from(scores).where(*where)).one()
    return {"already_messaged": int(row[0]), "already_in_control": int(row[1])}


def run_counts(conn: Connection, run_id: int) -> list[dict]:
    """Rows of a run by tier, channel, status and reason."""
    rows = conn.execute(select(outbox.c.tier, outbox.c.channel, outbox.c.status, outbox.c.reason,
                               func.count()).where(outbox.c.run_id == run_id)
                        .group_by(outbox.c.tier, outbox.c.channel, outbox.c.status, outbox.c.reason))
    return [{"tier": t, "channel": c, "status": s, "reason": r, "count": n} for t, c, s, r, n in rows]

