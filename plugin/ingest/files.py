"""Bulk import of CSV / JSON Lines files: streamed in chunks, validated, idempotent.

Validation (marshmallow) is the costliest step, so it runs in worker processes (threads
would share the GIL) while this process reads the file and writes; a bounded number of
chunks in flight keeps memory flat whatever the file size.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from marshmallow import ValidationError
from sqlalchemy import Engine

from plugin.ingest import writer
from plugin.ingest.schemas import EventSchema, UserSchema, nul_path
from plugin.store import bulk_cache

CHUNK_ROWS = 20_000
WORKERS = 2
IN_FLIGHT = 4  # chunks being validated at once
MAX_REPORTED_ERRORS = 20
EVENT_COLUMNS = {"user_id", "event", "timestamp", "properties", "event_id"}


@dataclass
class ImportReport:
    read: int = 0
    written: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"read": self.read, "written": self.written, "rejected": self.rejected, "errors": self.errors}


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return "csv"
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path.name}: use .csv, .jsonl or .ndjson (optionally .gz)")


def _coerce_cell(value: str):
    """Extra CSV columns become properties/attributes; numbers and booleans keep their type."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _csv_rows(lines: list[str], header: list[str], numbers: list[int], kind: str) -> Iterator[tuple[int, object]]:
    for line, cells_list in zip(numbers, csv.reader(lines)):
        if len(cells_list) > len(header):
            yield line, {"__error__": "row has more cells than the header"}
            continue
        cells = {k: v for k, v in zip(header, cells_list) if v != ""}
        if kind == "events":
            row = {k: v for k, v in cells.items() if k in EVENT_COLUMNS and k != "properties"}
            props = {}
            if "properties" in cells:
                try:
                    props = json.loads(cells["properties"])
                except ValueError:
                    yield line, {"__error__": "properties is not valid JSON"}
                    continue
            extra = {k: _coerce_cell(v) for k, v in cells.items() if k not in EVENT_COLUMNS}
            if extra and isinstance(props, dict):
                props = {**extra, **props}
            if props:
                row["properties"] = props
        else:
            known = UserSchema._declared_fields
            row = {k: (v if k in known else _coerce_cell(v)) for k, v in cells.items()}
        yield line, row


def _jsonl_rows(lines: list[str], numbers: list[int]) -> Iterator[tuple[int, object]]:
    for number, line in zip(numbers, lines):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as error:
            yield number, {"__error__": f"not valid JSON: {error}"}


@dataclass
class RawChunk:
    """Lines of the file, parsed in a worker; line numbers are the file's (1-based)."""
    fmt: str
    lines: list[str]
    first_line: int
    header: list[str] | None = None
    starts: list[int] | None = None  # each record's first line, when some span several lines

    def line_numbers(self) -> list[int]:
        return self.starts or list(range(self.first_line, self.first_line + len(self.lines)))


def _read_chunks(path: Path) -> Iterator[RawChunk]:
    """Split the file into chunks of whole records without parsing them.

    A CSV record may span lines inside quotes: a record is complete when its quote
    count is even.
    """
    fmt = _file_format(path)
    with _open_text(path) as handle:
        header = None
        number = 1
        if fmt == "csv":
            first = handle.readline()
            header = next(csv.reader([first]), [])
            number = 2
        chunk: list[str] = []
        starts: list[int] = []
        spanning = False
        pending, pending_start = "", number
        for line in handle:
            if fmt == "csv":
                if not pending:
                    pending_start = number
                pending += line
                number += 1
                if pending.count('"') % 2:
                    continue
                spanning = spanning or number - pending_start > 1
                line, pending = pending, ""
                starts.append(pending_start)
            else:
                starts.append(number)
                number += 1
            chunk.append(line)
            if len(chunk) >= CHUNK_ROWS:
                yield RawChunk(fmt, chunk, starts[0], header, starts if spanning else None)
                chunk, starts, spanning = [], [], False
        if pending:
            chunk.append(pending)
            starts.append(pending_start)
            spanning = True
        if chunk:
            yield RawChunk(fmt, chunk, starts[0], header, starts if spanning else None)


def validate_chunk(kind: str, chunk: RawChunk) -> tuple[list, list[dict]]:
    """Parse and validate a chunk into write-ready rows and per-line errors (in a worker)."""
    schema = EventSchema() if kind == "events" else UserSchema()
    if chunk.fmt == "csv":
        rows = _csv_rows(chunk.lines, chunk.header or [], chunk.line_numbers(), kind)
    else:
        rows = _jsonl_rows(chunk.lines, chunk.line_numbers())
    candidates, errors = [], []
    # Only a chunk whose text mentions NUL pays for the per-row search (PostgreSQL stores none).
    may_hold_nul = any("\x00" in text or "\\u0000" in text for text in chunk.lines)
    for line, row in rows:
        if isinstance(row, dict) and "__error__" in row:
            errors.append({"line": line, "errors": {"_row": [row["__error__"]]}})
            continue
        where = nul_path(row) if may_hold_nul else None
        if where:
            errors.append({"line": line, "errors": {where: ["Contains a NUL character."]}})
            continue
        candidates.append((line, row))
    try:
        # One load of the whole chunk costs a sixth less than a load per row.
        valid = schema.load([row for _, row in candidates], many=True)
    except ValidationError:
        valid = []  # some row is bad: load one by one to keep the good ones and name the bad lines
        for line, row in candidates:
            try:
                valid.append(schema.load(row))
            except ValidationError as error:
                errors.append({"line": line, "errors": error.normalized_messages()})
        errors.sort(key=lambda e: e["line"])
    if kind == "events":
        valid = writer.prepare_events(valid)
    return valid, errors


def import_file(engine: Engine, workspace_id: int, path: Path, kind: str,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import events or users from a file; each chunk commits on its own, in file order."""
    if kind not in ("events", "users"):
        raise ValueError("kind is events or users")
    if kind == "events":
        occurrences = writer.Occurrences()  # identical rows in different chunks are all kept too

        def write(conn, workspace_id, rows):
            return writer.write_prepared_events(conn, workspace_id, occurrences.renumber(rows))
    else:
        write = writer.upsert_users
    report = ImportReport()
    # One connection for the whole import (a transaction per chunk), with a cache that
    # stays warm from chunk to chunk.
    with ProcessPoolExecutor(max_workers=WORKERS) as pool, engine.connect() as conn, \
            bulk_cache(conn.execution_options(sqlite_immediate=True)) as conn:
        pending: deque = deque()
        for chunk in _read_chunks(path):
            pending.append(pool.submit(validate_chunk, kind, chunk))
            if len(pending) >= IN_FLIGHT:
                _write(conn, workspace_id, write, pending.popleft(), report, progress)
        while pending:
            _write(conn, workspace_id, write, pending.popleft(), report, progress)
    return report


def _write(conn, workspace_id, write, future, report: ImportReport, progress) -> None:
    valid, errors = future.result()
    report.read += len(valid) + len(errors)
    report.rejected += len(errors)
    room = MAX_REPORTED_ERRORS - len(report.errors)
    if room > 0:
        report.errors.extend(errors[:room])
    if valid:
        with conn.begin():
            report.written += write(conn, workspace_id, valid)
    if progress:
        progress(len(valid) + len(errors))
