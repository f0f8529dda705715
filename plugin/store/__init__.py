"""The store: one engine per app, transactions that behave on SQLite and PostgreSQL."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from plugin.store import tables  # noqa: F401  (re-exported for callers)
from plugin.store.tables import users

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                   "check_same_thread": False})
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling
        # defers it and breaks BEGIN IMMEDIATE), per SQLAlchemy's SQLite notes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection):
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # store.reading(): each statement is its own implicit transaction
        # Writers take the write lock up front so two writers wait on each other
        # (busy timeout) instead of failing when a read lock cannot be upgraded.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate", False) else "BEGIN")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on any error."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction of their own (a request's lookups).

    Within a request, one connection serves every such read (the API key, then the view's
    lookups) and is closed when the request ends. It runs in autocommit, which spares a BEGIN
    and a ROLLBACK per use (round trips on PostgreSQL); each statement still sees a
    consistent snapshot, as under READ COMMITTED.
    """
    held = _request_readers()
    if held is None:
        with _reader(engine) as conn:
            yield conn
        return
    conn = held.get(id(engine)) or held.setdefault(id(engine), _reader(engine))
    try:
        yield conn
    finally:
        conn.rollback()


def _reader(engine: Engine) -> Connection:
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def close_readers(held: dict) -> None:
    """Close the connections a request's `reading()` calls shared (the web layer calls this)."""
    for conn in held.values():
        conn.close()


@contextmanager
def bulk_cache(conn: Connection, kib: int = 256 * 1024) -> Iterator[Connection]:
    """On SQLite, give this connection a large page cache for a bulk write, then restore it.

    Millions of rows land at random places in an index (event keys, user ids); with SQLite's
    2 MB default each insert re-reads index pages from disk. PostgreSQL has its shared buffers.
    """
    if is_postgres(conn):
        yield conn
        return
    # Through the driver: a statement through SQLAlchemy would open a transaction.
    driver = conn.connection.driver_connection
    before = driver.execute("PRAGMA cache_size").fetchone()[0]
    driver.execute(f"PRAGMA cache_size = -{kib}")
    try:
        yield conn
    finally:
        driver.execute(f"PRAGMA cache_size = {before}")


def is_postgres(engine_or_conn) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def workspace_users(conn: Connection, workspace_id: int):
    """The workspace filter for walking users in id order. Without statistics SQLite would walk
    the (workspace_id, external_id) index and sort; `+ 0` keeps it on the id range. PostgreSQL
    has statistics, and the same `+ 0` would hide them and make it sort the whole table."""
    if is_postgres(conn):
        return users.c.workspace_id == workspace_id
    return users.c.workspace_id + 0 == workspace_id


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


# The web layer says where the current engine and the current request's readers are; the
# store itself knows nothing of requests. Outside a web app there is no current engine.
def _no_current_engine() -> Engine:
    raise RuntimeError("no current engine: store.engine() is for code running inside the web app")


_current_engine: Callable[[], Engine] = _no_current_engine
def _outside_a_request() -> dict | None:
    return None


_request_readers: Callable[[], dict | None] = _outside_a_request


def use_request_scope(current_engine: Callable[[], Engine], request_readers: Callable[[], dict | None]) -> None:
    """Install how `engine()` and `reading()` find the current app's engine and request."""
    global _current_engine, _request_readers
    _current_engine, _request_readers = current_engine, request_readers


def engine() -> Engine:
    """The engine of the app handling the current request."""
    return _current_engine()
