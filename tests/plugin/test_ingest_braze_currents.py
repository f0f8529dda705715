"""Braze Currents Avro files in with `likely import events --format braze-currents PATH…`.

Test files are written with fastavro's writer from the Currents schemas Braze documents for
its storage exports (https://www.braze.com/docs/user_guide/data_and_analytics/braze_currents/event_glossary/customer_behavior_events/,
…/message_engagement_events/), under the `event_type=<type>` paths Currents writes to.
"""
from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plugin.cli import cli
from plugin.store.tables import event_types, events, users

OPTIONAL = ["null", "string"]
COMMON = [{"name": "id", "type": "string"}, {"name": "user_id", "type": "string"},
          {"name": "external_user_id", "type": OPTIONAL, "default": None}, {"name": "time", "type": "int"}]
DEVICE = [{"name": n, "type": OPTIONAL, "default": None}
          for n in ("app_id", "platform", "os_version", "device_model", "device_id")]
SCHEMAS = {
    "users.behaviors.CustomEvent": {"type": "record", "name": "CustomEvent", "fields": [
        *COMMON, {"name": "timezone", "type": OPTIONAL, "default": None}, {"name": "name", "type": "string"},
        *DEVICE, {"name": "properties", "type": OPTIONAL, "default": None}]},
    "users.behaviors.Purchase": {"type": "record", "name": "Purchase", "fields": [
        *COMMON, {"name": "product_id", "type": "string"}, {"name": "price", "type": "double"},
        {"name": "currency", "type": "string"}, {"name": "properties", "type": OPTIONAL, "default": None},
        *DEVICE]},
    "users.behaviors.app.SessionStart": {"type": "record", "name": "SessionStart", "fields": [
        *COMMON, {"name": "session_id", "type": "string"}, *DEVICE]},
    "users.messages.pushnotification.Open": {"type": "record", "name": "PushNotificationOpen", "fields": [
        *COMMON, {"name": "timezone", "type": OPTIONAL, "default": None},
        *[{"name": n, "type": OPTIONAL, "default": None}
          for n in ("app_id", "campaign_id", "campaign_name", "message_variation_id", "canvas_id",
                    "canvas_name", "canvas_variation_id", "canvas_step_id", "send_id", "dispatch_id",
                    "platform", "os_version", "device_model", "device_id", "button_action_type")]]},
}
T0 = 1_790_000_000


def currents_file(root: Path, event_type: str, records: list[dict]) -> Path:
    folder = root / "currents" / "dataexport.prod-03.S3.integration.5f1e" / f"event_type={event_type}" / "date=2026-09-21-10"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0.avro"
    with open(path, "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(SCHEMAS[event_type]), records)
    return path


def custom(n: int, external: str | None = "u1", properties: str | None = '{"plan": "gold", "items": 2}') -> dict:
    return {"id": f"ce-{n}", "user_id": f"braze-{external}", "external_user_id": external, "time": T0 + n,
            "timezone": "Europe/Paris", "name": "added_to_cart", "app_id": "app-1", "platform": "ios",
            "os_version": "17.1", "device_model": "iPhone15,2", "device_id": "d-1", "properties": properties}


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(select(users.c.external_id, event_types.c.name, events.c.ts, events.c.properties)
                            .join(users, users.c.id == events.c.user_id)
                            .join(event_types, event_types.c.id == events.c.event_type_id)
                            .order_by(events.c.ts)).all()


def run_import(database_url, monkeypatch, *paths):
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    return CliRunner().invoke(cli, ["import", "events", "--format", "braze-currents", "--json",
                                    *map(str, paths)])


@pytest.fixture
def files(tmp_path):
    return [
        currents_file(tmp_path, "users.behaviors.CustomEvent", [custom(1), custom(2, "u2", None)]),
        currents_file(tmp_path, "users.behaviors.Purchase", [{
            "id": "p-1", "user_id": "braze-u1", "external_user_id": "u1", "time": T0 + 10,
            "product_id": "sku-42", "price": 19.99, "currency": "EUR", "properties": '{"color": "red"}',
            "app_id": "app-1", "platform": "ios", "os_version": None, "device_model": None, "device_id": None}]),
        currents_file(tmp_path, "users.behaviors.app.SessionStart", [{
            "id": "s-1", "user_id": "braze-u2", "external_user_id": "u2", "time": T0 + 20,
            "session_id": "sess-9", "app_id": "app-1", "platform": "android", "os_version": None,
            "device_model": None, "device_id": None}]),
    ]


def test_currents_files_become_events_and_a_reimport_writes_nothing(engine, database_url, monkeypatch, files):
    result = run_import(database_url, monkeypatch, *files)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"read": 4, "written": 4, "rejected": 0, "errors": []}
    got = stored(engine)
    assert [(r.external_id, r.name, r.ts) for r in got] == [
        ("u1", "added_to_cart", T0 + 1), ("u2", "added_to_cart", T0 + 2),
        ("u1", "purchase", T0 + 10), ("u2", "session_start", T0 + 20)]
    assert got[0].properties == {"plan": "gold", "items": 2}
    assert got[1].properties is None
    purchase = got[2].properties
    assert (purchase["product_id"], purchase["price"], purchase["currency"], purchase["color"]) == \
        ("sku-42", 19.99, "EUR", "red")
    assert got[3].properties["session_id"] == "sess-9"
    with engine.connect() as conn:
        zone = conn.execute(select(users.c.attributes).where(users.c.external_id == "u1")).scalar()
    assert zone["time_zone"] == "Europe/Paris"
    again = run_import(database_url, monkeypatch, *files)
    assert again.exit_code == 0 and json.loads(again.output)["written"] == 0
    assert len(stored(engine)) == 4


def test_bad_records_are_reported_by_file_and_record_and_not_written(engine, database_url, monkeypatch, tmp_path):
    path = currents_file(tmp_path, "users.behaviors.CustomEvent",
                         [custom(1), custom(2, external=None), custom(3, properties="{not json"), custom(4)])
    result = run_import(database_url, monkeypatch, path)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert (report["read"], report["written"], report["rejected"]) == (4, 2, 2)
    assert [(e["file"], e["line"], sorted(e["errors"])) for e in report["errors"]] == [
        ("0.avro", 2, ["external_user_id"]), ("0.avro", 3, ["properties"])]
    assert [r.ts for r in stored(engine)] == [T0 + 1, T0 + 4]


def test_a_file_outside_a_currents_event_type_path_is_a_clear_error(engine, database_url, monkeypatch, tmp_path):
    path = tmp_path / "events.avro"
    with open(path, "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(SCHEMAS["users.behaviors.CustomEvent"]), [custom(1)])
    result = run_import(database_url, monkeypatch, path)
    assert result.exit_code != 0 and "event_type=" in result.output
    assert stored(engine) == []


def test_not_an_avro_file_is_a_clear_error(engine, database_url, monkeypatch, tmp_path):
    folder = tmp_path / "event_type=users.behaviors.CustomEvent"
    folder.mkdir()
    (folder / "0.avro").write_text("user_id,event\n")
    result = run_import(database_url, monkeypatch, folder / "0.avro")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert stored(engine) == []


def test_message_engagement_files_keep_their_currents_name(engine, database_url, monkeypatch, tmp_path):
    path = currents_file(tmp_path, "users.messages.pushnotification.Open", [{
        "id": "po-1", "user_id": "braze-u1", "external_user_id": "u1", "time": T0 + 30, "timezone": "Asia/Tokyo",
        "app_id": "app-1", "campaign_id": "cmp-7", "campaign_name": "Spring", "message_variation_id": "mv-1",
        "canvas_id": None, "canvas_name": None, "canvas_variation_id": None, "canvas_step_id": None,
        "send_id": "s-1", "dispatch_id": "dsp-1", "platform": "ios", "os_version": "17.1",
        "device_model": "iPhone15,2", "device_id": "d-1", "button_action_type": None}])
    result = run_import(database_url, monkeypatch, path)
    assert result.exit_code == 0, result.output
    [opened] = stored(engine)
    assert (opened.name, opened.ts) == ("users.messages.pushnotification.Open", T0 + 30)
    assert opened.properties["campaign_id"] == "cmp-7" and opened.properties["dispatch_id"] == "dsp-1"
