"""The store: one engine per app, transactions that behave on SQLite and PostgreSQL."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from plugin.store import tables  # noqa: F401  (re-exported for callers)
from plugin.store.tables import metadata

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
    if not has_request_context():
        with _reader(engine) as conn:
            yield conn
        return
    held = g.setdefault("likely_readers", {})
    conn = held.get(id(engine)) or held.setdefault(id(engine), _reader(engine))
    try:
        yield conn
    finally:
        conn.rollback()


def _reader(engine: Engine) -> Connection:
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _close_readers(_error: BaseException | None) -> None:
    for conn in g.pop("likely_readers", {}).values():
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


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def init_app(app: Flask) -> None:
    from plugin.store import timeouts
    engine = make_engine(app.config["LIKELY"]["database_url"])
    timeouts.install(engine, app.config["LIKELY"]["statement_timeout_ms"])
    app.extensions["likely_engine"] = engine
    app.teardown_request(_close_readers)


def engine() -> Engine:
    return current_app.extensions["likely_engine"]
