"""Bulk import of CSV and JSON Lines, on SQLite and PostgreSQL."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import cli
from plugin.ingest import files
from plugin.ingest.files import import_file
from plugin.store.tables import event_types, events, users
from plugin.workspaces import ensure


def utc(*parts) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


def total(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def stored_events(engine):
    with engine.connect() as conn:
        return conn.execute(select(users.c.external_id, event_types.c.name, events.c.ts, events.c.properties)
                            .join(users, users.c.id == events.c.user_id)
                            .join(event_types, event_types.c.id == events.c.event_type_id)
                            .order_by(users.c.external_id, events.c.ts)).all()


def test_csv_import_with_properties_and_extra_columns(engine, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp,properties,value,coupon\n"
                    'u1,purchase,2026-10-01T10:00:00Z,"{""sku"": ""A""}",25.5,\n'
                    "u1,view,2026-10-01 09:00:00,,,SPRING\n"
                    "u2,view,2026-10-02T12:00:00+02:00,,,\n")
    report = import_file(engine, ensure(engine, "default").id, path, "events")
    assert report.as_dict() == {"read": 3, "written": 3, "rejected": 0, "errors": []}
    rows = stored_events(engine)
    assert rows[0] == ("u1", "view", utc(2026, 10, 1, 9), {"coupon": "SPRING"})  # no zone: UTC
    assert rows[1] == ("u1", "purchase", utc(2026, 10, 1, 10), {"sku": "A", "value": 25.5})
    assert rows[2].ts == utc(2026, 10, 2, 10)  # +02:00 converted


def test_jsonl_import_is_idempotent_and_reports_bad_lines(engine, tmp_path):
    lines = [{"user_id": f"u{i}", "event": "view", "timestamp": 1_790_000_000 + i} for i in range(30)]
    lines.insert(5, {"user_id": "bad", "event": "view", "timestamp": "not a time"})
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    workspace_id = ensure(engine, "default").id
    first = import_file(engine, workspace_id, path, "events")
    assert (first.read, first.written, first.rejected) == (32, 30, 2)
    assert [e["line"] for e in first.errors] == [6, 32]
    assert "timestamp" in first.errors[0]["errors"]
    second = import_file(engine, workspace_id, path, "events")
    assert (second.written, total(engine, events)) == (0, 30)


def test_import_streams_in_chunks(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 7)
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        for i in range(50):
            handle.write(json.dumps({"user_id": f"u{i % 9}", "event": "e", "timestamp": 1_790_000_000 + i}) + "\n")
    seen = []
    report = import_file(engine, ensure(engine, "default").id, path, "events", progress=seen.append)
    assert report.written == 50 and seen == [7] * 7 + [1]


def test_users_csv_import_merges_attributes(engine, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("user_id,email,country,email_consent,ltv\nu1,a@x.io,fr,true,10.5\nu2,,DE,,\n"
                    "u1,,,false,\n")
    report = import_file(engine, ensure(engine, "default").id, path, "users")
    assert (report.read, report.written, report.rejected) == (3, 2, 0)
    with engine.connect() as conn:
        attrs = dict(conn.execute(select(users.c.external_id, users.c.attributes)).all())
    assert attrs == {"u1": {"email": "a@x.io", "country": "FR", "email_consent": False, "ltv": 10.5},
                     "u2": {"country": "DE"}}


def test_unknown_format_is_a_clear_error(engine, tmp_path):
    path = tmp_path / "events.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError, match="use .csv, .jsonl"):
        import_file(engine, 1, path, "events")


def test_cli_import_reports_and_uses_the_workspace(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    ensure(engine, "acme")
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\nu1,view,2026-10-01T00:00:00Z\nu2,view,oops\n")
    result = CliRunner().invoke(cli, ["import", "events", str(path), "--workspace", "acme", "--json",
                                      "--max-rejected", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["written"] == 1
    missing = CliRunner().invoke(cli, ["import", "events", str(path), "--workspace", "nope"])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_quoted_multiline_csv_cells_keep_line_numbers_right(engine, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text('user_id,event,timestamp,note\n'
                    'u1,view,2026-10-01T00:00:00Z,"first line\nsecond line"\n'
                    'u2,view,bad-time,\n'
                    'u3,view,2026-10-01T00:00:00Z,plain\n')
    report = import_file(engine, ensure(engine, "default").id, path, "events")
    assert (report.read, report.written, report.rejected) == (3, 2, 1)
    assert report.errors[0]["line"] == 4
    assert stored_events(engine)[0].properties == {"note": "first line\nsecond line"}


def test_cli_import_fails_when_rows_are_rejected_and_names_the_first_reasons(engine, database_url, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    ensure(engine, "default")
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\nu1,view,2026-10-01T00:00:00Z\nu2,view,oops\n"
                    "u3,view,1969-12-31T00:00:00Z\n")
    failed = CliRunner().invoke(cli, ["import", "events", str(path)])
    assert failed.exit_code == 1
    assert "line 3" in failed.output and "line 4" in failed.output and "--max-rejected" in failed.output
    assert total(engine, events) == 1  # the good row is kept: importing the fixed file again is safe
    within_budget = CliRunner().invoke(cli, ["import", "events", str(path), "--max-rejected", "2"])
    assert within_budget.exit_code == 0, within_budget.output
    over_budget = CliRunner().invoke(cli, ["import", "events", str(path), "--max-rejected", "1"])
    assert over_budget.exit_code == 1


def test_history_from_1970_on_is_accepted(engine, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\n"
                    "u1,purchase,19970101\n"            # ISO 8601 basic date, as CD purchase data has it
                    "u1,purchase,1985-06-01T12:00:00Z\n"
                    "u2,view,1970-01-01T00:00:00Z\n"
                    "u3,view,1969-12-31T23:59:59Z\n"    # before 1970: refused
                    "u4,view,2999-01-01T00:00:00Z\n")   # more than a day ahead: refused
    report = import_file(engine, ensure(engine, "default").id, path, "events")
    assert (report.written, report.rejected) == (3, 2)
    assert [e["line"] for e in report.errors] == [5, 6]
    assert sorted(r.ts for r in stored_events(engine)) == [0, utc(1985, 6, 1, 12), utc(1997, 1, 1)]


def test_identical_rows_without_event_id_are_all_kept_and_reimport_changes_nothing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 3)  # repeats of one row land in different chunks
    rows = ["u1,purchase,1997-03-02,12.5"] * 2 + ["u2,view,1997-03-02,"] + ["u1,purchase,1997-03-02,12.5"] * 3 \
        + ["u2,view,1997-03-02,", "u1,purchase,1997-03-02,9"]
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp,value\n" + "\n".join(rows) + "\n")
    workspace_id = ensure(engine, "default").id
    first = import_file(engine, workspace_id, path, "events")
    assert (first.read, first.written) == (8, 8)
    again = import_file(engine, workspace_id, path, "events")
    assert again.written == 0 and total(engine, events) == 8
    values = sorted((r.external_id, (r.properties or {}).get("value")) for r in stored_events(engine))
    assert values.count(("u1", 12.5)) == 5 and values.count(("u2", None)) == 2


def test_identical_rows_with_event_ids_are_one_event(engine, tmp_path):
    path = tmp_path / "events.jsonl"
    row = {"user_id": "u1", "event": "purchase", "timestamp": "1997-03-02", "event_id": "order-1"}
    path.write_text((json.dumps(row) + "\n") * 3)
    report = import_file(engine, ensure(engine, "default").id, path, "events")
    assert (report.read, report.written) == (3, 1)
