"""CleverTap events and profiles in: POST /webhooks/{workspace}/clevertap and
`likely import events --format clevertap`.

Payloads are CleverTap's documented examples: Upload API records
(https://developer.clevertap.com/docs/upload-events-api, …/upload-user-profiles-api), a Get Events
response (https://developer.clevertap.com/docs/get-events-api, `ts` as YYYYMMDDHHMMSS) and a
webhook's profile payload (https://developer.clevertap.com/docs/webhooks). CleverTap webhooks
cannot sign; they send HTTP Basic credentials, checked against the workspace's password.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import cli
from plugin.store.tables import event_types, events, users
from tests.helpers import post_signed
from tests.plugin import campaign_data as cd

PASSWORD = "clevertap-webhook-pass"
UPLOAD = {"d": [
    {"identity": "1189549", "ts": 1468308340, "type": "event", "evtName": "Product viewed",
     "evtData": {"Product name": "Casio Chronograph Watch", "Category": "Mens Watch", "Price": 59.99,
                 "Currency": "USD"}},
    {"identity": "1189549", "ts": 1468308340, "type": "profile",
     "profileData": {"Name": "Jack Montana", "Email": "jack@gmail.com", "Phone": "+14155551234", "Gender": "M",
                     "DOB": "$D_1468308340", "Customer Type": "Platinum", "MSG-email": False, "MSG-push": True,
                     "MSG-sms": True}},
]}
GET_EVENTS = {"status": "success", "next_cursor": "ZyZjfwYEAgdjYmZyKz8NegYFAwxmamF%2FZz4HegIBBk1mZmV",
              "records": [{"profile": {"objectId": "a8ffcbc9-a747-4ee3-a791-c5e58ad03097", "platform": "Web",
                                       "email": "peter@foo.com", "profileData": {"favoriteColor": "blue"},
                                       "identity": "5555555555", "id": 33},
                           "ts": 20151023140416, "event_props": {"value": "pizza"},
                           "session_props": {"utm_source": "Foo", "utm_medium": "Bar", "session_source": "Direct"}}]}
WEBHOOK = {"target_date": 20171127, "profiles": [
    {"objectId": "__g5f2e", "all_identities": ["1189549"], "identity": "1189549", "email": "jack@gmail.com",
     "phone": "+14155551234", "name": "Jack Montana", "profileData": {"Customer Type": "Gold"},
     "key_values": {"coupon": "SAVE10"}}]}


def basic(password=PASSWORD) -> dict:
    token = base64.b64encode(f"clevertap:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def post(client, payload, password=PASSWORD, query=""):
    return client.post(f"/webhooks/clevertap{query}", data=json.dumps(payload), headers=basic(password))


@pytest.fixture
def ws(engine, app):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, inbound={"clevertap_webhook_password": PASSWORD})
    return ws


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(select(users.c.external_id, event_types.c.name, events.c.ts, events.c.properties)
                            .join(users, users.c.id == events.c.user_id)
                            .join(event_types, event_types.c.id == events.c.event_type_id)
                            .order_by(events.c.ts)).all()


def attributes(engine, external_id):
    with engine.connect() as conn:
        return conn.execute(select(users.c.attributes).where(users.c.external_id == external_id)).scalar()


def test_upload_records_become_an_event_and_a_profile(client, engine, ws):
    response = post(client, UPLOAD)
    assert response.status_code == 200, response.json
    assert response.json == {"accepted": 2, "written": 2, "duplicate": False}
    [event] = stored(engine)
    assert (event.external_id, event.name, event.ts) == ("1189549", "Product viewed", 1468308340)
    assert event.properties["Price"] == 59.99 and event.properties["Product name"] == "Casio Chronograph Watch"
    jack = attributes(engine, "1189549")
    assert (jack["name"], jack["email"], jack["phone"]) == ("Jack Montana", "jack@gmail.com", "+14155551234")
    assert jack["email_consent"] is False and jack["push_consent"] is True and jack["sms_consent"] is True
    assert jack["Customer_Type"] == "Platinum"
    assert post(client, UPLOAD).json["duplicate"] is True


def test_get_events_records_take_their_event_name_and_compact_time(client, engine, ws):
    response = post(client, GET_EVENTS, query="?event=Ordered%20Pizza")
    assert response.status_code == 200, response.json
    [event] = stored(engine)
    expected = int(datetime(2015, 10, 23, 14, 4, 16, tzinfo=timezone.utc).timestamp())
    assert (event.external_id, event.name, event.ts, event.properties) == \
        ("5555555555", "Ordered Pizza", expected, {"value": "pizza"})
    peter = attributes(engine, "5555555555")
    assert peter["email"] == "peter@foo.com" and peter["favoriteColor"] == "blue"


def test_a_webhook_profile_payload_updates_profiles(client, engine, ws):
    post(client, UPLOAD)
    response = post(client, WEBHOOK)
    assert response.status_code == 200 and response.json["accepted"] == 1
    assert attributes(engine, "1189549")["Customer_Type"] == "Gold"


def test_standard_webhooks_signing_is_accepted_too(client, engine, ws):
    assert post_signed(client, "/webhooks/clevertap", UPLOAD).status_code == 200


def test_wrong_credentials_are_refused(client, engine, ws):
    response = post(client, UPLOAD, password="guess-guess")
    assert response.status_code == 401 and response.json["error"]["details"]["reason"] == "bad_credentials"
    assert stored(engine) == []


def test_bad_records_are_named_and_nothing_is_written(client, engine, ws):
    body = {"d": [UPLOAD["d"][1], {**UPLOAD["d"][0], "identity": None},
                  {**UPLOAD["d"][0], "ts": 20151399999999}, {"type": "merge"}]}
    response = post(client, body)
    assert response.status_code == 400
    details = response.json["error"]["details"]
    assert set(details) == {"d.1", "d.2", "d.3"}
    assert "identity" in details["d.1"] and "ts" in details["d.2"] and "type" in details["d.3"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar() == 0
    # Get Events records without an event name cannot be placed.
    unnamed = post(client, GET_EVENTS)
    assert unnamed.status_code == 400 and "eventName" in unnamed.json["error"]["details"]["records.0"]


def test_cli_imports_a_get_events_export(engine, database_url, monkeypatch, tmp_path):
    path = tmp_path / "pizza.json"
    path.write_text(json.dumps(GET_EVENTS))
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["import", "events", "--format", "clevertap", "--event", "Ordered Pizza",
                                      "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["written"] == 1
    assert [r.name for r in stored(engine)] == ["Ordered Pizza"]
