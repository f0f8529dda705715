"""Segment Spec in at POST /webhooks/{workspace}/segment, both stores.

Payloads are Segment's own documented examples (https://segment.com/docs/connections/spec/track/,
…/spec/identify/, …/spec/page/); Segment's Webhooks destination signs with `X-Signature`, the
hex HMAC-SHA1 of the body under the shared secret
(https://segment.com/docs/connections/destinations/catalog/actions-webhook/).
"""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from plugin.store.tables import event_types, events, users
from tests.helpers import post_signed
from tests.plugin import campaign_data as cd

SHARED_SECRET = "segment-shared-secret-42"
TRACK = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {"library": {"name": "analytics.js", "version": "2.11.1"}, "ip": "108.0.78.21"},
    "event": "Course Clicked", "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"title": "Intro to Analytics"},
    "receivedAt": "2015-12-12T19:11:01.266Z", "sentAt": "2015-12-12T19:11:01.169Z",
    "timestamp": "2015-12-12T19:11:01.249Z", "type": "track", "userId": "AiUGstSDIg",
    "originalTimestamp": "2015-12-12T19:11:01.152Z",
}
IDENTIFY = {
    "anonymousId": "507f191e810c19729de860ea", "channel": "browser",
    "context": {"ip": "8.8.8.8", "timezone": "America/Los_Angeles", "locale": "en-US"},
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2015-02-23T22:28:55.387Z", "sentAt": "2015-02-23T22:28:55.111Z",
    "timestamp": "2015-02-23T22:28:55.111Z",
    "traits": {"name": "Peter Gibbons", "email": "peter@example.com", "plan": "premium", "logins": 5,
               "firstName": "Peter",
               "address": {"street": "6th St", "city": "San Francisco", "state": "CA",
                           "postalCode": "94103", "country": "USA"}},
    "type": "identify", "userId": "97980cfea0067", "version": "1.1",
}
PAGE = {"type": "page", "name": "Home", "userId": "97980cfea0067", "messageId": "page-1",
        "properties": {"title": "Welcome | Initech", "url": "http://www.example.com"},
        "timestamp": "2015-02-23T22:30:00.000Z"}


def post_segment(client, payload, secret=SHARED_SECRET, path="/webhooks/segment"):
    body = json.dumps(payload)
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha1).hexdigest()
    return client.post(path, data=body, headers={"Content-Type": "application/json", "X-Signature": signature})


@pytest.fixture
def ws(engine, app):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, inbound={"segment_shared_secret": SHARED_SECRET})
    return ws


def stored_events(engine, ws):
    with engine.connect() as conn:
        return [(r.external_id, r.name, r.ts, r.properties) for r in conn.execute(
            select(users.c.external_id, event_types.c.name, events.c.ts, events.c.properties)
            .select_from(events.join(users, users.c.id == events.c.user_id)
                         .join(event_types, event_types.c.id == events.c.event_type_id))
            .where(events.c.workspace_id == ws).order_by(events.c.ts))]


def attributes(engine, ws, external_id):
    with engine.connect() as conn:
        return conn.execute(select(users.c.attributes).where(
            users.c.workspace_id == ws, users.c.external_id == external_id)).scalar()


def test_a_batch_of_track_identify_and_page_maps_to_events_and_attributes(client, engine, ws):
    response = post_segment(client, {"batch": [TRACK, IDENTIFY, PAGE]})
    assert response.status_code == 200, response.json
    assert response.json == {"accepted": 3, "written": 3, "duplicate": False}
    got = stored_events(engine, ws)
    assert ("AiUGstSDIg", "Course Clicked", 1449947461, {"title": "Intro to Analytics"}) in got
    assert ("97980cfea0067", "Page Viewed", 1424730600,
            {"title": "Welcome | Initech", "url": "http://www.example.com", "name": "Home"}) in got
    peter = attributes(engine, ws, "97980cfea0067")
    assert peter["email"] == "peter@example.com" and peter["first_name"] == "Peter"
    assert (peter["city"], peter["state"], peter["zip"]) == ("San Francisco", "CA", "94103")
    assert peter["address.country"] == "USA" and "country" not in peter  # a name, not an ISO code
    assert (peter["plan"], peter["logins"]) == ("premium", 5)
    assert peter["time_zone"] == "America/Los_Angeles" and peter["language"] == "en-US"


def test_a_redelivered_message_is_written_once(client, engine, ws):
    assert post_segment(client, TRACK).json["written"] == 1
    again = post_segment(client, TRACK)
    assert again.status_code == 200 and again.json["duplicate"] is True
    # The same message re-sent inside another batch: its messageId keeps it single.
    other = post_segment(client, {"batch": [TRACK, {**TRACK, "messageId": "ajs-2", "event": "Signed Up"}]})
    assert other.json == {"accepted": 2, "written": 1, "duplicate": False}
    assert len(stored_events(engine, ws)) == 2


def test_standard_webhooks_signing_is_accepted_too(client, engine, ws):
    response = post_signed(client, "/webhooks/default/segment", TRACK)
    assert response.status_code == 200 and response.json["written"] == 1


def test_a_wrong_or_missing_signature_is_refused(client, engine, ws):
    bad = post_segment(client, TRACK, secret="not-the-secret")
    assert bad.status_code == 401 and bad.json["error"]["details"]["reason"] == "bad_signature"
    unsigned = client.post("/webhooks/segment", data=json.dumps(TRACK), headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json["error"]["details"]["reason"] == "missing_signature"
    assert stored_events(engine, ws) == []


def test_a_workspace_without_a_shared_secret_refuses_x_signature(client, engine, app):
    other = cd.workspace_id(engine, "acme")
    response = post_segment(client, TRACK, path="/webhooks/acme/segment")
    assert response.status_code == 401 and response.json["error"]["details"]["reason"] == "no_secret"
    assert stored_events(engine, other) == []


def test_bad_rows_are_named_and_nothing_is_written(client, engine, ws):
    anonymous = {k: v for k, v in TRACK.items() if k != "userId"}
    response = post_segment(client, {"batch": [IDENTIFY, anonymous, {**TRACK, "timestamp": "yesterday"},
                                               {**TRACK, "type": "alias"}]})
    assert response.status_code == 400
    details = response.json["error"]["details"]
    assert set(details) == {"batch.1", "batch.2", "batch.3"}
    assert "userId" in details["batch.1"] and "timestamp" in details["batch.2"] and "type" in details["batch.3"]
    assert stored_events(engine, ws) == []
    assert attributes(engine, ws, "97980cfea0067") is None  # the good identify was not written either
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users).where(users.c.workspace_id == ws)).scalar() == 0


def test_the_shared_secret_saved_through_the_settings_form_is_kept_secret_and_used(client, engine, app):
    from sqlalchemy import update

    from plugin.store import transaction
    from plugin.store.tables import workspaces
    from tests.helpers import bearer
    with transaction(engine) as conn:  # whatever an earlier test left in the default workspace's form
        conn.execute(update(workspaces).where(workspaces.c.slug == "default")
                     .values(settings={}, secret_settings=None))
    saved = client.patch("/v1/settings", json={"inbound": {"segment_shared_secret": SHARED_SECRET}},
                         headers=bearer())
    assert saved.status_code == 200, saved.json
    shown = client.get("/v1/settings", headers=bearer()).json["settings"]
    assert shown["inbound"]["segment_shared_secret"] == "********"
    assert post_segment(client, TRACK).status_code == 200
