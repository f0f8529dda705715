"""The one writer behind webhooks and file imports: set-based, batched, idempotent.

Each call runs inside the caller's transaction, so a batch is written whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import Connection, String, and_, bindparam, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from plugin.ingest import erasure
from plugin.store import is_postgres
from plugin.store.tables import event_types, metadata, users
from plugin.store.types import utcnow

LOOKUP_CHUNK = 5_000  # ids per IN (...) list: under SQLite's variable limit, cheap for PostgreSQL
# On PostgreSQL, batches up to this many rows go in as arrays (one statement, no temp table):
# for a webhook's few rows, COPY's temp-table CREATE/TRUNCATE cost more than the rows did.
ARRAY_BATCH_ROWS = 1_000
# Code above ingest that acts on particular written events (engagement: push opens, in-app
# clicks update the messages they concern) registers here when the app is built, so ingest never
# imports it. An observer gets (conn, workspace_id, the prepared rows of its names, user ids).
EventObserver = Callable[[Connection, int, list[tuple], dict[str, int]], Any]
_observers: dict[frozenset[str], EventObserver] = {}


def observe(names: Iterable[str], observer: EventObserver) -> None:
    """Call `observer` with the rows of these event names whenever events are written."""
    _observers[frozenset(names)] = observer


def _insert(conn: Connection, table):
    return (pg_insert if is_postgres(conn) else sqlite_insert)(table)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def event_key(user_id: str, event: str, ts: int, properties: str | None, event_id: str | None,
              occurrence: int = 0) -> int:
    """A stable signed 64-bit identity: the event's own id when given, else its content and its
    occurrence number among identical rows of one batch or file (see `prepare_events`)."""
    if event_id:
        identity = f"id\x1f{event_id}"
    else:
        identity = f"{user_id}\x1f{event}\x1f{ts}\x1f{properties or ''}"
        if occurrence:  # the first occurrence keeps the plain content identity
            identity += f"\x1f#{occurrence}"
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "big", signed=True)


def user_ids(conn: Connection, workspace_id: int, external_ids: Iterable[str]) -> dict[str, int]:
    """Map host user ids to store ids, creating users not seen before.

    Straight through the driver: per-row bind processing and 5,000-parameter IN lists
    cost more than the database work itself at import rates.
    """
    wanted = sorted(set(external_ids))
    if is_postgres(conn):
        return _user_ids_postgres(conn, workspace_id, wanted)
    mapping: dict[str, int] = {}
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
        mapping.update(_lookup_users_sqlite(conn, workspace_id, chunk))
    missing = [e for e in wanted if e not in mapping]
    if missing:
        stamp = _stored_now(conn)
        conn.connection.driver_connection.cursor().executemany(
            "INSERT OR IGNORE INTO users (workspace_id, external_id, attributes, created_at, updated_at) "
            "VALUES (?, ?, '{}', ?, ?)", [(workspace_id, e, stamp, stamp) for e in missing])
        for chunk in _chunks(missing, LOOKUP_CHUNK):
            mapping.update(_lookup_users_sqlite(conn, workspace_id, chunk))
    return mapping


def _stored_now(conn: Connection):
    """utcnow() in the backend's storage form, converted once per batch."""
    process = users.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(utcnow()) if process else utcnow()


def _lookup_users_sqlite(conn: Connection, workspace_id: int, chunk: Sequence[str]) -> dict[str, int]:
    marks = ",".join("?" * len(chunk))
    cursor = conn.connection.driver_connection.cursor()
    cursor.execute(f"SELECT external_id, id FROM users WHERE workspace_id = ? AND external_id IN ({marks})",
                   (workspace_id, *chunk))
    return dict(cursor.fetchall())


def _user_ids_postgres(conn: Connection, workspace_id: int, wanted: Sequence[str]) -> dict[str, int]:
    cursor = conn.connection.driver_connection.cursor()
    if len(wanted) <= ARRAY_BATCH_ROWS:
        stamp = utcnow()
        cursor.execute("INSERT INTO users (workspace_id, external_id, attributes, created_at, updated_at) "
                       "SELECT %s, external_id, '{}'::jsonb, %s, %s FROM unnest(%s::text[]) AS external_id "
                       "ON CONFLICT (workspace_id, external_id) DO NOTHING", (workspace_id, stamp, stamp, list(wanted)))
        cursor.execute("SELECT external_id, id FROM users WHERE workspace_id = %s AND external_id = ANY(%s::text[])",
                       (workspace_id, list(wanted)))
        return dict(cursor.fetchall())
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS users_incoming (external_id text) ON COMMIT DELETE ROWS")
    cursor.execute("TRUNCATE users_incoming")
    with cursor.copy("COPY users_incoming (external_id) FROM STDIN") as copy:
        for external_id in wanted:
            copy.write_row((external_id,))
    stamp = utcnow()
    cursor.execute("INSERT INTO users (workspace_id, external_id, attributes, created_at, updated_at) "
                   "SELECT %s, external_id, '{}'::jsonb, %s, %s FROM users_incoming "
                   "ON CONFLICT (workspace_id, external_id) DO NOTHING", (workspace_id, stamp, stamp))
    cursor.execute("SELECT u.external_id, u.id FROM users u JOIN users_incoming i USING (external_id) "
                   "WHERE u.workspace_id = %s", (workspace_id,))
    return dict(cursor.fetchall())


def event_type_ids(conn: Connection, workspace_id: int, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    conn.execute(_insert(conn, event_types).on_conflict_do_nothing(index_elements=["workspace_id", "name"]),
                 [{"workspace_id": workspace_id, "name": n} for n in wanted])
    rows = conn.execute(select(event_types.c.name, event_types.c.id).where(
        event_types.c.workspace_id == workspace_id, event_types.c.name.in_(wanted)))
    return {name: tid for name, tid in rows}


# (user_id, event, ts, properties JSON or None, event_key, content key or None when the row
# has an event_id, occurrence number among identical rows)
Prepared = tuple


def prepare_events(rows: Sequence[dict]) -> list[Prepared]:
    """The pure part of writing: canonical property JSON and identity (runs in import workers).

    Rows without an `event_id` are identified by their content. Identical rows in one batch
    are all kept (two identical purchases on one day are real): the n-th repeat of a row gets
    occurrence number n in its identity. So the same batch delivered again changes nothing,
    while the repeats inside it are each stored once.
    """
    prepared = []
    seen: dict[int, int] = {}
    for r in rows:
        props = json.dumps(r["properties"], sort_keys=True, separators=(",", ":")) if r.get("properties") else None
        event_id = r.get("event_id")
        if event_id:
            prepared.append((r["user_id"], r["event"], r["timestamp"], props,
                             event_key(r["user_id"], r["event"], r["timestamp"], props, event_id), None, 0))
            continue
        content = event_key(r["user_id"], r["event"], r["timestamp"], props, None)
        occurrence = seen.get(content, 0)
        seen[content] = occurrence + 1
        key = event_key(r["user_id"], r["event"], r["timestamp"], props, None, occurrence) if occurrence else content
        prepared.append((r["user_id"], r["event"], r["timestamp"], props, key, content, occurrence))
    return prepared


class Occurrences:
    """Content keys of the rows without `event_id` seen so far in one file, so that repeats of a
    row in later chunks are numbered on from those in earlier ones (`prepare_events` numbers
    within a chunk).

    Keys are kept as sorted numpy runs merged like a binary counter (8 bytes a row, O(log n)
    runs); only the keys seen more than once are in a dict with their count.
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.repeats: dict[int, int] = {}

    def renumber(self, prepared: Sequence[Prepared]) -> list[Prepared]:
        content = np.fromiter((p[5] for p in prepared if p[5] is not None), dtype=np.int64)
        if not len(content):
            return list(prepared)
        earlier = np.zeros(len(content), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, content), len(run) - 1)
            earlier |= run[at] == content
        out, index, chunk_counts = [], 0, {}
        for p in prepared:
            if p[5] is None:
                out.append(p)
                continue
            seen_before = earlier[index]
            index += 1
            chunk_counts[p[5]] = chunk_counts.get(p[5], 0) + 1
            if not seen_before:
                out.append(p)
                continue
            occurrence = self.repeats.get(p[5], 1) + p[6]
            user_id, event, ts, props = p[:4]
            out.append((user_id, event, ts, props, event_key(user_id, event, ts, props, None, occurrence),
                        p[5], occurrence))
        # Totals per content key: earlier total (1 when seen once, else the dict) + this chunk's.
        repeated = content[earlier]
        for key in set(repeated.tolist()):
            self.repeats[key] = self.repeats.get(key, 1) + chunk_counts[key]
        for key, n in chunk_counts.items():
            if n > 1 and key not in self.repeats:
                self.repeats[key] = n
        self._add(np.unique(content[~earlier]))
        return out

    def _add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        # Merge equal-sized runs (a binary counter): every key is re-sorted O(log n) times.
        while self.runs and len(self.runs[-1]) <= len(keys):
            keys = np.union1d(self.runs.pop(), keys)
        self.runs.append(keys)


def write_events(conn: Connection, workspace_id: int, rows: Sequence[dict]) -> int:
    """Insert validated events; return how many were new (redelivered ones are ignored)."""
    return write_prepared_events(conn, workspace_id, prepare_events(rows))


def write_prepared_events(conn: Connection, workspace_id: int, prepared: Sequence[Prepared]) -> int:
    if not prepared:
        return 0
    user_map = user_ids(conn, workspace_id, (p[0] for p in prepared))
    type_map = event_type_ids(conn, workspace_id, (p[1] for p in prepared))
    records = [(workspace_id, user_map[p[0]], type_map[p[1]], p[2], p[3], p[4]) for p in prepared]
    for names, observer in _observers.items():
        if not names.isdisjoint(type_map):
            observer(conn, workspace_id, [p[:5] for p in prepared if p[1] in names], user_map)
    if is_postgres(conn):
        return _copy_events_postgres(conn, records)
    driver = conn.connection.driver_connection
    before = driver.total_changes
    driver.cursor().executemany(
        "INSERT OR IGNORE INTO events (workspace_id, user_id, event_type_id, ts, properties, event_key) "
        "VALUES (?, ?, ?, ?, ?, ?)", records)
    return driver.total_changes - before


def _copy_events_postgres(conn: Connection, records: list[tuple]) -> int:
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING (small batches:
    the same INSERT straight from arrays)."""
    cursor = conn.connection.driver_connection.cursor()
    if len(records) <= ARRAY_BATCH_ROWS:
        columns = [list(column) for column in zip(*records)]
        cursor.execute("INSERT INTO events (workspace_id, user_id, event_type_id, ts, properties, event_key) "
                       "SELECT * FROM unnest(%s::int[], %s::bigint[], %s::int[], %s::bigint[], "
                       "%s::text[]::jsonb[], %s::bigint[]) "
                       "ON CONFLICT (workspace_id, event_key) DO NOTHING", columns)
        return cursor.rowcount
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS events_incoming "
                   "(workspace_id int, user_id bigint, event_type_id int, ts bigint, properties jsonb, "
                   "event_key bigint) ON COMMIT DELETE ROWS")
    cursor.execute("TRUNCATE events_incoming")
    with cursor.copy("COPY events_incoming (workspace_id, user_id, event_type_id, ts, properties, event_key) "
                     "FROM STDIN") as copy:
        for record in records:
            copy.write_row(record)
    cursor.execute("INSERT INTO events (workspace_id, user_id, event_type_id, ts, properties, event_key) "
                   "SELECT workspace_id, user_id, event_type_id, ts, properties, event_key FROM events_incoming "
                   "ON CONFLICT (workspace_id, event_key) DO NOTHING")
    return cursor.rowcount


def merge_attributes(rows: Sequence[dict]) -> dict[str, dict]:
    """Fold a batch into one patch per user, later rows winning (None removes)."""
    merged: dict[str, dict] = {}
    for r in rows:
        merged.setdefault(r["user_id"], {}).update(r["attributes"])
    return merged


def upsert_users(conn: Connection, workspace_id: int, rows: Sequence[dict]) -> int:
    """Apply attribute patches; return how many users were touched."""
    patches = merge_attributes(rows)
    if not patches:
        return 0
    id_map = user_ids(conn, workspace_id, patches.keys())
    now = utcnow()
    if is_postgres(conn):
        # jsonb || patch, then drop the keys the patch set to null.
        new_value = func.jsonb_strip_nulls(users.c.attributes.op("||")(
            cast(bindparam("patch", type_=String()), JSONB)))
    else:
        new_value = func.json_patch(users.c.attributes, bindparam("patch"))
    statement = (update(users).where(users.c.id == bindparam("uid"))
                 .values(attributes=new_value, updated_at=bindparam("now")))
    params = [{"uid": id_map[ext], "patch": json.dumps(patch), "now": now} for ext, patch in patches.items()]
    for chunk in _chunks(params, LOOKUP_CHUNK):
        conn.execute(statement, list(chunk))
    return len(params)


def erase_users(conn: Connection, workspace_id: int, external_ids: Iterable[str]) -> int:
    """Right to erasure: queue their removal from every sync destination they were pushed to,
    then delete users and every row that refers to them, in every table."""
    wanted = sorted(set(external_ids))
    erased = 0
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
        ids = list(conn.execute(select(users.c.id).where(
            users.c.workspace_id == workspace_id, users.c.external_id.in_(chunk))).scalars())
        if not ids:
            continue
        # First what was pushed out: the rows that record it are about to go.
        erasure.queue_removals(conn, workspace_id, ids)
        # Any table with a user_id column holds data about users; new tables are covered too.
        for table in reversed(metadata.sorted_tables):
            if table is users or "user_id" not in table.c:
                continue
            condition = table.c.user_id.in_(ids)
            if "workspace_id" in table.c:
                condition = and_(table.c.workspace_id == workspace_id, condition)
            conn.execute(delete(table).where(condition))
        erased += conn.execute(delete(users).where(users.c.id.in_(ids))).rowcount
    return erased


