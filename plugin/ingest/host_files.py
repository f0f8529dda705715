"""Importing host files in their own formats: Braze Currents Avro, CleverTap and Segment JSON.

Records are mapped by the format's adapter, validated by our schemas and written by the one
writer, a chunk per transaction: a good chunk is written whole; a bad record is reported (file,
record number, fields) and never written in part. Event ids make a re-import write nothing new.
"""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import Engine

from plugin.ingest import writer
from plugin.ingest.files import MAX_REPORTED_ERRORS, ImportReport
from plugin.ingest.formats import Mapped, RowProblem, braze_currents, clevertap, convert, segment

FORMATS = ("braze-currents", "clevertap", "segment")
CHUNK = 5_000


def _json_records(path: Path, unwrap: Callable[[Any], Iterator[tuple[str, Any]]]) -> Iterator[Any]:
    """A JSON document (unwrapped by the format) or JSON Lines, one record per line."""
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if document is not None:
        for _, record in unwrap(document):
            yield record
        return
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield {"__invalid_json__": True}


def _plan(path: Path, fmt: str, event_name: str | None) -> tuple[Iterator[Any], Callable[[dict], Mapped]]:
    if fmt == "braze-currents":
        return braze_currents.records(path), braze_currents.adapter(braze_currents.event_type_of(path))
    if fmt == "clevertap":
        return _json_records(path, clevertap.rows), clevertap.adapter(event_name)
    if fmt == "segment":
        return _json_records(path, segment.messages), segment.adapt
    raise ValueError(f"unknown format {fmt}; one of {', '.join(FORMATS)}")


def _guarded(adapt: Callable[[dict], Mapped]) -> Callable[[dict], Mapped]:
    def run(record: dict) -> Mapped:
        if record.get("__invalid_json__"):
            raise RowProblem({"_row": ["Not valid JSON."]})
        return adapt(record)
    return run


def import_host_files(engine: Engine, workspace_id: int, paths: list[Path], fmt: str,
                      event_name: str | None = None,
                      progress: Callable[[int], None] | None = None) -> ImportReport:
    report = ImportReport()
    plans = [(path, *_plan(path, fmt, event_name)) for path in paths]  # every path checked first
    for path, records, adapt in plans:
        numbered = enumerate(records, start=1)
        while True:
            chunk = list(islice(numbered, CHUNK))
            if not chunk:
                break
            converted = convert(chunk, _guarded(adapt))
            report.read += converted.rows
            report.rejected += len(converted.errors)
            for number, errors in converted.errors.items():
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append({"file": path.name, "line": int(number), "errors": errors})
            with engine.begin() as conn:
                if converted.events:
                    report.written += writer.write_events(conn, workspace_id, converted.events)
                if converted.users:
                    writer.upsert_users(conn, workspace_id, converted.users)
            if progress:
                progress(converted.rows)
    return report
