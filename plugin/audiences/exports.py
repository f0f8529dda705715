"""Streaming a segment snapshot (or a diff) as NDJSON or CSV in constant memory.

The snapshot is read in keyset chunks of `BATCH` members inside one read transaction (a
REPEATABLE READ snapshot on PostgreSQL, the transaction's WAL snapshot on SQLite), so the
output is exact even while refreshes commit. The database formats each member's line and
joins a chunk into one string: Python only passes strings on, which is what makes a million
ids a second possible (building a Python row per member costs more than the query).
"""
from __future__ import annotations

from json.encoder import encode_basestring  # the C implementation when available
from typing import Iterator

from sqlalchemy import ColumnElement, Engine, Select, Text, case, cast, func, literal, or_, select, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by

from plugin.audiences.segments import MembershipChanges, members_query

BATCH = 20_000
SEPARATORS = {"ndjson": "\n", "csv": "\r\n"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _line(external_id: ColumnElement, fmt: str, postgres: bool) -> ColumnElement:
    """One member's line, built by the database."""
    if fmt == "csv":
        # A cell a spreadsheet would run as a formula (= + - @, or a leading tab or CR) is
        # prefixed with ' so it opens as text (OWASP, "CSV Injection").
        formula = func.substr(external_id, 1, 1).in_(FORMULA_STARTS)
        external_id = case((formula, literal("'") + external_id), else_=external_id)
        special = or_(*(external_id.contains(c, autoescape=True) for c in (",", '"', "\r", "\n")))
        quoted = literal('"') + func.replace(external_id, '"', '""') + literal('"')
        return case((special, quoted), else_=external_id)
    if postgres:  # to_json quotes and escapes; json_build_object would add spaces
        return literal('{"user_id":') + cast(func.to_json(external_id), Text) + literal("}")
    return func.json_object("user_id", external_id)


def _joined(line: ColumnElement, order: ColumnElement, separator: str, postgres: bool) -> ColumnElement:
    if postgres:
        return func.string_agg(line, aggregate_order_by(literal(separator), order))
    return func.group_concat(line, separator)  # in the ordered subquery's order


def _read_snapshot(engine: Engine):
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def stream_members(engine: Engine, segment_id: int, version: int, after_user_id: int, fmt: str) -> Iterator[str]:
    """Host user ids of the snapshot: {"user_id": …} lines (ndjson) or a `user_id` column (csv)."""
    postgres = engine.dialect.name == "postgresql"
    separator = SEPARATORS[fmt]
    if fmt == "csv":
        yield "user_id" + separator
    with _read_snapshot(engine) as conn:
        while True:
            chunk = members_query(segment_id, version, after_user_id).limit(BATCH).subquery("chunk")
            last, text = conn.execute(select(
                func.max(chunk.c.user_id),
                _joined(_line(chunk.c.external_id, fmt, postgres), chunk.c.user_id, separator, postgres))).one()
            if last is None:
                return
            yield text + separator
            after_user_id = last


def stream_changes(engine: Engine, diff: MembershipChanges) -> Iterator[str]:
    """{"change": "added"|"removed", "user_id": host id} lines (diffs are small: formatted here)."""
    def labelled(members: Select, change: str) -> Select:
        inner = members.subquery()
        return select(literal(change).label("change"), inner.c.external_id)
    query = select(union_all(labelled(diff.added, "added"), labelled(diff.removed, "removed")).subquery())
    with _read_snapshot(engine) as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for batch in result.partitions(BATCH):
            yield "".join(['{"change":"' + change + '","user_id":' + encode_basestring(ext) + "}\n"
                           for change, ext in batch])
