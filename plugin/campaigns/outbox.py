"""The outbox state machine: claim due rows, mark them in flight, settle each with its outcome.

    pending ──claim──▶ (leased) ──mark──▶ sending ──▶ sent | failed (due again at next_attempt_at)
                                                     | dead | skipped (reason) | held (configuration)
                                                     | unknown (the provider may or may not have it)

A claim leases rows by pushing `next_attempt_at` and `claim_expires` to the lease's end; the
worker renews the lease while it works (`renew`), so the lease can be short. Rows are marked
`sending` — committed — before their provider request goes out. A worker that dies (kill -9)
stops renewing: its claimed rows that were never marked fall due again when the lease ends
(nothing of them was sent), and its `sending` rows are *ambiguous* — the provider may have
them. `recover_in_flight` settles those by the policy recorded when they were marked: resent
only where the destination drops a repeat of our idempotency key, otherwise `unknown` (counted
and shown, never sent again). `attempts` grows at every claim, so
a row that keeps killing workers is dead-lettered instead of looping. Settling is
conditional on the claim (`claimed_by`), so a worker whose lease ran out cannot overwrite
what a later claim recorded. PostgreSQL claims with FOR UPDATE SKIP LOCKED; SQLite with
BEGIN IMMEDIATE (one writer at a time) and the same UPDATE … WHERE id IN (SELECT … LIMIT n).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, bindparam, func, literal_column, not_, select, tuple_, update

from plugin.campaigns import keys
from plugin.store import is_postgres, transaction
from plugin.store.tables import outbox

log = logging.getLogger(__name__)

DUE = ("pending", "failed")
IN_FLIGHT = "sending"
# How long a claim lasts without renewal: a crashed worker's rows are taken over this soon.
LEASE_SECONDS = 30
# The policy for a `sending` row after a crash, recorded in its reason when it is marked.
RESEND_IF_CRASHED, UNKNOWN_IF_CRASHED = "in_flight: resend_if_crashed", "in_flight: unknown_if_crashed"
MAX_ATTEMPTS = 8
SINGLE_FIELDS = ("status", "reason", "provider_id", "sent_ts", "next_attempt_at")


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row, named by its key (run, user, channel)."""

    run_id: int
    user_id: int
    channel: str
    status: str                       # sent | failed | dead | skipped | held | unknown | pending (released)
    reason: str | None = None
    provider_id: str | None = None
    next_attempt_at: int | None = None  # failed / released rows: when they are due again
    attempts_delta: int = 0           # -1 gives back the attempt a claim took (released rows)


def claim(engine: Engine, worker_id: str, limit: int, now_ts: int,
          paused: Iterable[tuple[int, str]] = (), lease_seconds: int = LEASE_SECONDS) -> tuple[str, list]:
    """Lease up to `limit` due rows; return the claim token and the rows."""
    token = f"{worker_id[:40]}:{uuid.uuid4().hex[:16]}"
    expires = now_ts + lease_seconds
    with transaction(engine) as conn:
        postgres = is_postgres(conn)
        # PostgreSQL names rows by their key and skips rows another worker is claiming;
        # SQLite (one writer at a time) by rowid.
        identity = tuple_(*outbox.primary_key.columns) if postgres else literal_column("outbox.rowid")
        due = (select(*outbox.primary_key.columns) if postgres else select(literal_column("rowid")))
        # Oldest due first, read in index order: the scan stops after `limit` rows instead of
        # collecting every due row of a million-row run on each claim.
        due = (due.where(outbox.c.status.in_(DUE), outbox.c.next_attempt_at <= now_ts)
               .order_by(outbox.c.next_attempt_at).limit(limit))
        paused = list(paused)
        if paused:  # connectors whose circuit breaker is open wait
            due = due.where(not_(tuple_(outbox.c.workspace_id, outbox.c.connector).in_(paused)))
        if postgres:
            due = due.with_for_update(skip_locked=True)
        rows = conn.execute(update(outbox).where(identity.in_(due))
                            .values(claimed_by=token, claim_expires=expires, next_attempt_at=expires,
                                    attempts=outbox.c.attempts + 1)
                            .returning(*outbox.c)).all()
    return token, sorted(rows, key=lambda r: (r.run_id, r.user_id, r.channel))


def settle(conn: Connection, token: str, outcomes: Sequence[Outcome], now_ts: int) -> int:
    """Record outcomes of rows still held by this claim; return how many were recorded.

    Rows with identical outcomes (a whole provider batch sent under one message id) are
    settled by one UPDATE … WHERE id IN (…); the rest in one executemany.
    """
    groups: dict[tuple, list[int]] = {}
    for o in outcomes:
        groups.setdefault((o.run_id, o.channel, o.status, o.reason, o.provider_id, o.next_attempt_at,
                           o.attempts_delta), []).append(o.user_id)
    recorded = 0
    singles = []
    postgres = is_postgres(conn)
    for (run_id, channel, status, reason, provider_id, next_at, delta), user_ids in groups.items():
        values = _values(status, reason, provider_id, next_at, delta, now_ts)
        if len(user_ids) == 1:
            singles.append({"b_run": run_id, "b_user": user_ids[0], "b_channel": channel, "b_delta": delta,
                            **{f"b_{k}": values[k] for k in SINGLE_FIELDS}})
            continue
        for start in range(0, len(user_ids), 5000):
            recorded += conn.execute(update(outbox).where(
                outbox.c.run_id == run_id, outbox.c.channel == channel, outbox.c.claimed_by == token,
                keys.user_id_in(outbox.c.user_id, user_ids[start:start + 5000], postgres))
                .values(**values)).rowcount
    if singles:
        statement = (update(outbox)
                     .where(outbox.c.run_id == bindparam("b_run"), outbox.c.user_id == bindparam("b_user"),
                            outbox.c.channel == bindparam("b_channel"), outbox.c.claimed_by == token)
                     .values(status=bindparam("b_status"), reason=bindparam("b_reason"),
                             provider_id=bindparam("b_provider_id"), sent_ts=bindparam("b_sent_ts"),
                             next_attempt_at=bindparam("b_next_attempt_at"), claimed_by=None,
                             claim_expires=None, attempts=outbox.c.attempts + bindparam("b_delta")))
        result = conn.execute(statement, singles)
        recorded += result.rowcount if result.rowcount and result.rowcount > 0 else len(singles)
    return recorded


def _values(status: str, reason: str | None, provider_id: str | None, next_at: int | None,
            delta: int, now_ts: int) -> dict:
    values = {"status": status, "reason": reason[:300] if reason else None, "provider_id": provider_id,
              "sent_ts": now_ts if status == "sent" else None,
              "next_attempt_at": next_at if next_at is not None else now_ts,
              "claimed_by": None, "claim_expires": None}
    if delta:
        values["attempts"] = outbox.c.attempts + delta
    return values


def mark_in_flight(conn: Connection, token: str, rows: Sequence, *, resend_if_crashed: bool) -> int:
    """Mark claimed rows `sending` just before their request goes out (commit before sending).

    `resend_if_crashed` is the connector's policy should the worker die before the answer:
    true only for destinations that drop a repeat of our idempotency key.
    """
    postgres = is_postgres(conn)
    reason = RESEND_IF_CRASHED if resend_if_crashed else UNKNOWN_IF_CRASHED
    groups: dict[tuple[int, str], list[int]] = {}
    for row in rows:
        groups.setdefault((row.run_id, row.channel), []).append(row.user_id)
    marked = 0
    for (run_id, channel), user_ids in groups.items():
        for start in range(0, len(user_ids), 5000):
            marked += conn.execute(update(outbox).where(
                outbox.c.run_id == run_id, outbox.c.channel == channel, outbox.c.claimed_by == token,
                keys.user_id_in(outbox.c.user_id, user_ids[start:start + 5000], postgres))
                .values(status=IN_FLIGHT, reason=reason)).rowcount
    return marked


def renew(engine: Engine, token: str, until_ts: int) -> int:
    """Extend this claim's lease (its unsent and its in-flight rows) to `until_ts`."""
    with transaction(engine) as conn:
        return conn.execute(update(outbox).where(outbox.c.claimed_by == token)
                            .values(claim_expires=until_ts, next_attempt_at=until_ts)).rowcount


def recover_in_flight(engine: Engine, now_ts: int) -> dict[str, int]:
    """Settle rows left `sending` by a worker whose lease ran out (it crashed mid-request).

    Whether the provider got them is unknown: rows whose destination de-duplicates on our key
    are queued again; the rest are settled `unknown`, never sent again. Two set-based updates.
    """
    stale = [outbox.c.status == IN_FLIGHT, outbox.c.claim_expires <= now_ts]
    with transaction(engine) as conn:
        resent = conn.execute(update(outbox).where(*stale, outbox.c.reason == RESEND_IF_CRASHED)
                              .values(status="pending", reason="resent_after_worker_crash",
                                      next_attempt_at=now_ts, claimed_by=None, claim_expires=None)).rowcount
        unknown = conn.execute(update(outbox).where(*stale)
                               .values(status="unknown", reason="worker_crashed_during_request",
                                       next_attempt_at=now_ts, claimed_by=None, claim_expires=None)).rowcount
    return {"resent_after_crash": resent, "unknown": unknown}


@contextmanager
def kept_claimed(engine: Engine, token: str, now_ts: int, lease_seconds: int) -> Iterator[None]:
    """Renew the claim every third of its lease while the body runs (a thread: a provider call
    that takes long must not let another worker take the rows over)."""
    stop = threading.Event()
    started = time.monotonic()

    def heartbeat() -> None:
        while not stop.wait(lease_seconds / 3):
            try:  # measured from the pass's own clock, which tests may set
                renew(engine, token, now_ts + int(time.monotonic() - started) + lease_seconds)
            except Exception:  # a blip must not kill the heartbeat; the next beat retries
                log.warning("outbox: could not renew claim %s", token, exc_info=True)

    thread = threading.Thread(target=heartbeat, name=f"claim:{token[:20]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def release_held(engine: Engine, workspace_id: int, connector: str | None = None, now_ts: int = 0) -> int:
    """Put held rows back in the queue (after the workspace's connector settings were fixed)."""
    condition = [outbox.c.workspace_id == workspace_id, outbox.c.status == "held"]
    if connector:
        condition.append(outbox.c.connector == connector)
    with transaction(engine) as conn:
        return conn.execute(update(outbox).where(*condition)
                            .values(status="pending", next_attempt_at=now_ts, reason=None)).rowcount


def pending_count(conn: Connection, run_id: int | None = None) -> int:
    """Rows not settled for good (pending, failed awaiting retry, leased or in flight)."""
    query = select(func.count()).select_from(outbox).where(outbox.c.status.in_((*DUE, IN_FLIGHT)))
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    return conn.execute(query).scalar_one()

