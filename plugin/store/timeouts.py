"""A deadline on every statement run while serving a request.

A request must never hold a web worker on one query: each statement run inside a Flask
request gets `statement_timeout_ms`. On PostgreSQL the server enforces it (`statement_timeout`,
set on a connection when it is checked out for a request, and reset to none when a job or a
command checks it out); on SQLite a progress handler interrupts the statement once its deadline
has passed. A statement stopped this way is told apart by `is_statement_timeout`, and the API
answers 503 `query_timeout`. Jobs and commands (training, scoring, imports) run without one.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Callable

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

QUERY_CANCELED = "57014"          # PostgreSQL's SQLSTATE for a cancelled statement
PROGRESS_STEPS = 10_000           # SQLite VM instructions between two deadline checks
_DEADLINE, _TIMEOUT = "likely_deadline", "likely_statement_timeout"


def install(engine: Engine, timeout_ms: int, in_request: Callable[[], bool]) -> None:
    """Give the engine's statements a deadline of `timeout_ms` whenever a request runs them
    (`in_request`, from the web layer, says whether the current code serves one)."""
    if engine.dialect.name == "sqlite":
        _install_sqlite(engine, timeout_ms / 1000, in_request)
    else:
        _install_postgres(engine, int(timeout_ms), in_request)


def _install_sqlite(engine: Engine, seconds: float, has_request_context: Callable[[], bool]) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, record) -> None:
        info = record.info

        def past_deadline() -> int:  # non-zero interrupts the running statement
            deadline = info.get(_DEADLINE)
            return int(deadline is not None and time.monotonic() > deadline)
        dbapi_connection.set_progress_handler(past_deadline, PROGRESS_STEPS)

    @event.listens_for(engine, "before_cursor_execute")
    def on_execute(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        # The deadline covers the statement and the fetching of its rows (SQLite works as rows
        # are fetched); the next statement sets its own.
        conn.info[_DEADLINE] = time.monotonic() + seconds if has_request_context() else None

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection, record) -> None:
        record.info.pop(_DEADLINE, None)


def _install_postgres(engine: Engine, timeout_ms: int, has_request_context: Callable[[], bool]) -> None:
    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection, record, _proxy) -> None:
        wanted = timeout_ms if has_request_context() else 0  # 0: none, for jobs and commands
        if record.info.get(_TIMEOUT) == wanted:
            return  # already set on this connection: no round trip
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(wanted)}")
        dbapi_connection.commit()  # a rolled-back SET would be undone
        record.info[_TIMEOUT] = wanted


def is_statement_timeout(error: BaseException) -> bool:
    """True when a statement was stopped by its deadline (not any other database error)."""
    if not isinstance(error, DBAPIError):
        return False
    original = error.orig
    if isinstance(original, sqlite3.OperationalError):
        return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT
    return getattr(original, "sqlstate", None) == QUERY_CANCELED
