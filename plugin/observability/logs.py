"""Structured JSON logs: one object per line, with the request or job context, secrets masked."""
from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Iterator, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from plugin.observability.redaction import mask_query_values, redact

# Fields every log line of the current request (or job run) carries, e.g. request_id.
# The default is never mutated: bind() sets a new dict, so every context starts from this empty one.
_context: ContextVar[dict[str, Any]] = ContextVar("likely_log_context", default={})  # noqa: B039


def bind(**fields: Any) -> Token:
    """Add fields to every log line of this context (a request, a job run) until `unbind`."""
    return _context.set({**_context.get(), **fields})


def unbind(token: Token) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current(field: str) -> Any:
    return _context.get().get(field)


class ContextFilter(logging.Filter):
    """Copies the bound context (request_id, job_id, …) onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments, extras and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        for name, value in list(vars(record).items()):
            if name not in RESERVED_ATTRS and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class QueryValuesFilter(logging.Filter):
    """Masks every query-string value in the HTTP client's lines (`?a=***&b=***`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a bad format string must not lose the line
            return True
        record.msg, record.args = mask_query_values(message), None
        return True


class JsonLogFormatter(JsonFormatter):
    """python-json-logger with stable field names; the whole line is redacted once more."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z")

    def format(self, record: logging.LogRecord) -> str:
        # Belt and braces: extras that are not strings (dicts, lists) are only masked here.
        return redact(super().format(record))


HANDLER_NAME = "likely-json"


def configure(level: str = "INFO", stream: TextIO | None = None,
              secrets: list[str] | tuple[str, ...] = ()) -> logging.Handler:
    """Send every log record of this process to `stream` (stderr) as JSON lines.

    Idempotent: a second call replaces the handler it installed before.
    """
    for value in secrets:
        redact.add(value)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonLogFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # At DEBUG the HTTP client logs each request line, query string included: its values may be
    # tokens (`?key=…`, `?sig=…`, a webhook's own secret), so they are masked at the source.
    client = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, QueryValuesFilter) for f in client.filters):
        client.addFilter(QueryValuesFilter())
    # APScheduler logs every submission at INFO; our run log says the same, once.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    return handler


def configure_from_settings(settings: dict, stream: TextIO | None = None) -> logging.Handler:
    from plugin.observability.redaction import secrets_in_settings
    from plugin.settings import settings_schema
    return configure(settings.get("log_level", "INFO"), stream,
                     secrets_in_settings(settings, settings_schema()["properties"]))
