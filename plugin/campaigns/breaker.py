"""A circuit breaker per (workspace, connector), kept in the store so every worker sees it.

A provider call whose every item failed with a retryable error (the provider is down or
throttling us) counts as one failure; THRESHOLD failures in a row open the breaker: the
connector's rows are not claimed until `open_until`. After the cool-down the next call is
the probe: a success closes the breaker, another failure opens it again for longer.
A configuration error is recorded too (`last_error`), so a settings problem is visible.
"""
from __future__ import annotations

from sqlalchemy import Connection, select

from plugin.store import is_postgres
from plugin.store.tables import connector_breakers
from plugin.store.types import utcnow

THRESHOLD = 5
COOL_DOWN_SECONDS = 60
MAX_COOL_DOWN_SECONDS = 3600


def open_connectors(conn: Connection, now_ts: int) -> list[tuple[int, str]]:
    """(workspace, connector) pairs that are paused right now."""
    return [(r.workspace_id, r.connector) for r in conn.execute(
        select(connector_breakers.c.workspace_id, connector_breakers.c.connector)
        .where(connector_breakers.c.open_until > now_ts))]


def _upsert(conn: Connection, values: dict) -> None:
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(connector_breakers).values(values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["workspace_id", "connector"],
        set_={k: statement.excluded[k] for k in values if k not in ("workspace_id", "connector")}))


def record(conn: Connection, workspace_id: int, connector: str, *, failed: bool,
           error: str | None, now_ts: int) -> int | None:
    """Record one provider call's outcome; return `open_until` if the breaker is (now) open."""
    row = conn.execute(select(connector_breakers).where(
        connector_breakers.c.workspace_id == workspace_id,
        connector_breakers.c.connector == connector)).first()
    if not failed:
        if row is not None and (row.failures or row.open_until):
            _upsert(conn, {"workspace_id": workspace_id, "connector": connector, "failures": 0,
                           "open_until": None, "last_error": row.last_error, "updated_at": utcnow()})
        return None
    failures = (row.failures if row else 0) + 1
    open_until = None
    if failures >= THRESHOLD:
        # Each failed probe doubles the pause, up to an hour.
        open_until = now_ts + min(MAX_COOL_DOWN_SECONDS, COOL_DOWN_SECONDS * 2 ** (failures - THRESHOLD))
    _upsert(conn, {"workspace_id": workspace_id, "connector": connector, "failures": failures,
                   "open_until": open_until, "last_error": (error or "")[:300] or None,
                   "updated_at": utcnow()})
    return open_until


def note_configuration_error(conn: Connection, workspace_id: int, connector: str, error: str) -> None:
    """Surface a settings problem without counting it as an outage (the rows are held)."""
    row = conn.execute(select(connector_breakers).where(
        connector_breakers.c.workspace_id == workspace_id,
        connector_breakers.c.connector == connector)).first()
    _upsert(conn, {"workspace_id": workspace_id, "connector": connector,
                   "failures": row.failures if row else 0, "open_until": row.open_until if row else None,
                   "last_error": f"configuration: {error}"[:300], "updated_at": utcnow()})


def status(conn: Connection, workspace_id: int, now_ts: int) -> list[dict]:
    return [{"connector": r.connector, "state": "open" if (r.open_until or 0) > now_ts else
             ("half_open" if r.failures >= THRESHOLD else "closed"), "failures": r.failures,
             "open_until": r.open_until, "last_error": r.last_error}
            for r in conn.execute(select(connector_breakers)
                                  .where(connector_breakers.c.workspace_id == workspace_id)
                                  .order_by(connector_breakers.c.connector))]
