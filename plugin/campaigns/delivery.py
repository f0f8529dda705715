"""The delivery worker's body: claim due outbox rows, send them in connector batches, settle.

`deliver_outbox(engine, worker_id, limit)` is one pass; the scheduler's worker loop calls it
again and again. Each provider batch is marked in flight (committed) before its request and
settled as soon as its answer is in, so a crash leaves at most the batch in flight undecided:
the next pass settles it `unknown` — or queues it again where the destination de-duplicates on
our key. An answer that leaves it open whether the provider took the message (read timeout,
500) is the same ambiguity and settled the same way.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from itertools import groupby
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Engine, text, update

import connectors
from connectors import AudienceConnector, Result
from plugin.campaigns import breaker, channels, messages, pool
from plugin.campaigns.outbox import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    Outcome,
    claim,
    kept_claimed,
    mark_in_flight,
    recover_in_flight,
    settle,
)
from plugin.store import is_postgres, transaction
from plugin.store.tables import dead_addresses, users
from plugin.store.types import utcnow

RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 6 * 3600


def deliver_outbox(engine: Engine, worker_id: str = "worker", limit: int = 1000, *,
                   now_ts: int | None = None, connector_options: dict | None = None,
                   lease_seconds: int = LEASE_SECONDS) -> dict[str, int]:
    """One delivery pass over at most `limit` due rows; counts by outcome."""
    now_ts = int(time.time()) if now_ts is None else now_ts
    recovered = recover_in_flight(engine, now_ts)
    with engine.connect() as conn:
        paused = breaker.open_connectors(conn, now_ts)
    token, rows = claim(engine, worker_id, limit, now_ts, paused, lease_seconds)
    counts: Counter = Counter(claimed=len(rows))
    counts.update({k: v for k, v in recovered.items() if v})
    if not rows:
        return dict(counts)
    with kept_claimed(engine, token, now_ts, lease_seconds):
        for workspace_id, group in groupby(sorted(rows, key=lambda r: r.workspace_id),
                                           key=lambda r: r.workspace_id):
            _deliver_workspace(engine, token, workspace_id, list(group), now_ts, connector_options or {},
                               counts)
    return dict(counts)


def _deliver_workspace(engine: Engine, token: str, workspace_id: int, rows: list, now_ts: int,
                       options: dict, counts: Counter) -> None:
    with engine.connect() as conn:
        context = messages.load_context(conn, workspace_id, rows)
        settings = channels.connector_settings(conn, workspace_id)
    settled, ready = messages.prepare(context, rows, now_ts)
    _record(engine, token, workspace_id, settled, now_ts, counts)
    try:
        with pool.connectors_for(workspace_id, settings, options) as active:
            _send_all(engine, token, workspace_id, active, ready, now_ts, counts)
    except connectors.ConfigurationError as error:  # the workspace's settings do not validate
        reason = f"configuration_error: {error.reason}"
        _record(engine, token, workspace_id, [_held(p.row, reason, now_ts) for p in ready], now_ts, counts)


def _send_all(engine, token, workspace_id, active: dict, ready: list, now_ts: int, counts: Counter) -> None:
    paused: dict[str, int] = {}  # connectors whose breaker opened during this pass: until when
    by_connector = sorted(ready, key=lambda p: (p.connector, p.audience_id or ""))
    for (name, audience_id), group in groupby(by_connector, key=lambda p: (p.connector, p.audience_id)):
        items = list(group)
        if name in paused:
            _pause(engine, token, workspace_id, items, paused[name], now_ts, counts)
            continue
        open_until = _send(engine, token, workspace_id, active.get(name), name, audience_id, items, now_ts, counts)
        if open_until is not None:
            paused[name] = open_until


def _send(engine, token, workspace_id, connector, name, audience_id, items: list, now_ts,
          counts) -> int | None:
    """Send in the connector's batches, settling each; returns `open_until` if the breaker opened."""
    if connector is None:
        reason = f"connector_not_enabled: {name}"
        with transaction(engine) as conn:
            breaker.note_configuration_error(conn, workspace_id, name, reason)
        _record(engine, token, workspace_id, [_held(p.row, reason, now_ts) for p in items], now_ts, counts)
        return None
    size = connector.batch_size
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        with transaction(engine) as conn:  # committed before the request: a crash leaves a trace
            mark_in_flight(conn, token, [p.row for p in chunk], resend_if_crashed=connector.deduplicates)
        if isinstance(connector, AudienceConnector):
            results = connector.add(audience_id, [p.item for p in chunk])
        else:
            results = connector.send([p.item for p in chunk])
        by_key = {r.key: r for r in results}
        outcomes, retired = [], []
        for p in chunk:
            outcome, dead = _outcome(p, by_key.get(p.item.key), now_ts, connector)
            outcomes.append(outcome)
            if dead:
                retired.append(p)
        failed_call = bool(results) and all(r.status == "failed" and r.retryable for r in results)
        config = next((r.reason for r in results if r.configuration_error), None)
        with transaction(engine) as conn:
            _retire_addresses(conn, workspace_id, retired)
            settle(conn, token, outcomes, now_ts)
            if config:
                breaker.note_configuration_error(conn, workspace_id, name, config)
            open_until = breaker.record(conn, workspace_id, name, failed=failed_call,
                                        error=results[0].reason if failed_call else None, now_ts=now_ts)
        counts.update(o.status for o in outcomes)
        if open_until is not None:
            _pause(engine, token, workspace_id, items[start + size:], open_until, now_ts, counts)
            return open_until
    return None


def _pause(engine, token, workspace_id, items: list, open_until: int, now_ts: int, counts: Counter) -> None:
    """The provider keeps failing: leave these for after the cool-down, their attempt not spent."""
    _record(engine, token, workspace_id, [Outcome(*_key(p.row), p.row.status, p.row.reason,
                                                  next_attempt_at=open_until, attempts_delta=-1)
                                          for p in items], now_ts, Counter())
    counts["paused"] += len(items)


def _outcome(prepared: messages.Prepared, result: Result | None, now_ts: int,
             connector: connectors.Connector) -> tuple[Outcome, bool]:
    """The row's next state from the connector's result; True when its address must be retired."""
    row = prepared.row
    if result is None:
        result = Result.failed(prepared.item.key, "no_result_from_connector", retryable=True)
    if result.status == "failed" and result.retryable and not connector.may_resend(result):
        # The provider may have it and does not drop repeats: sending again could deliver twice.
        return Outcome(*_key(row), "unknown", f"provider_answer_unknown: {result.reason}"), False
    if result.status == "sent":
        return Outcome(*_key(row), "sent", provider_id=result.provider_id), False
    if result.status == "skipped":
        return Outcome(*_key(row), "skipped", result.reason), False
    if result.configuration_error:
        return _held(row, f"configuration_error: {result.reason}", now_ts), False
    if result.invalid_address:
        if row.channel == "push" and prepared.other_addresses:
            # Another device of the user may still work: try it now, this attempt not counted.
            return Outcome(*_key(row), "pending", "previous_token_invalid", next_attempt_at=now_ts,
                           attempts_delta=-1), True
        reason = "invalid_push_token" if row.channel == "push" else "invalid_address"
        return Outcome(*_key(row), "skipped", reason), True
    if result.retryable and row.attempts < MAX_ATTEMPTS:
        retry_at = now_ts + _backoff(row.attempts, result.retry_after)
        return Outcome(*_key(row), "failed", result.reason, next_attempt_at=retry_at), False
    if result.retryable:
        return Outcome(*_key(row), "dead", f"gave_up_after_{row.attempts}_attempts: {result.reason}"), False
    return Outcome(*_key(row), "dead", result.reason), False


def _key(row: Any) -> tuple[int, int, str]:
    return row.run_id, row.user_id, row.channel


def _backoff(attempts: int, retry_after: float | None) -> int:
    """Exponential with equal jitter, never sooner than the provider asked."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return int(max(base / 2 + random.random() * base / 2, retry_after or 0))


def _held(row: Any, reason: str, now_ts: int) -> Outcome:
    # Held rows wait for their settings to be fixed (release_held); the claim's attempt is given back.
    return Outcome(*_key(row), "held", reason[:300], next_attempt_at=now_ts, attempts_delta=-1)


def _record(engine: Engine, token: str, workspace_id: int, outcomes: Sequence[Outcome], now_ts: int,
            counts: Counter) -> None:
    if not outcomes:
        return
    with transaction(engine) as conn:
        settle(conn, token, outcomes, now_ts)
    counts.update(o.status for o in outcomes)


def _retire_addresses(conn: Connection, workspace_id: int, retired: Iterable[messages.Prepared]) -> None:
    """Never use these again: remember their hash, and drop dead push tokens from the user."""
    for p in retired:
        if not p.address:
            continue
        values = {"workspace_id": workspace_id, "channel": p.row.channel,
                  "address_hash": channels.address_hash(p.address), "user_id": p.row.user_id,
                  "reason": "invalid_address", "created_at": utcnow()}
        if is_postgres(conn):
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        conn.execute(dialect_insert(dead_addresses).values(values).on_conflict_do_nothing())
        if p.row.channel == "push":
            _remove_push_token(conn, p.row.user_id, p.address)


def _remove_push_token(conn: Connection, user_id: int, token: str) -> None:
    if is_postgres(conn):
        new = text("jsonb_set(users.attributes, '{push_tokens}', coalesce((SELECT jsonb_agg(t) FROM "
                   "jsonb_array_elements(users.attributes -> 'push_tokens') AS t WHERE t <> to_jsonb("
                   "CAST(:token AS text))), '[]'::jsonb))")
    else:
        new = text("json_set(users.attributes, '$.push_tokens', (SELECT json_group_array(value) FROM "
                   "json_each(users.attributes, '$.push_tokens') WHERE value <> :token))")
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(attributes=new.bindparams(token=token), updated_at=utcnow()))

