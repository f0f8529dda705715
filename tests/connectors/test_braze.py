"""Braze host (cohort import, /users/track) and Braze in-app, faked with Braze's real bodies."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
import responses

from connectors.errors import ConfigurationError
from connectors.host.braze import BrazeHost
from connectors.in_app.braze import BrazeInApp
from connectors.model import HostEvent, Member, Message, UserAttributes

from .contract import ConnectorContract

REST = "https://rest.fra-01.braze.eu"
TRACK = f"{REST}/users/track"
CANVAS_SEND = f"{REST}/canvas/trigger/send"
CANVAS_ID = "8f3c0a4e-2b5d-4c1e-9a7f-0d6b1e2c3f4a"
COHORT_USERS = f"{REST}/partners/likely/cohorts/users"
API_KEY = "braze-rest-key-5b2e1c"
PARTNER_KEY = "braze-partner-key-77aa"
CLIENT_SECRET = "braze-data-import-key-19fe"


def braze_error(url, status, message, headers=None):
    return responses.Response(responses.POST, url, status=status, json={"message": message},
                              headers=headers or {})


class BrazeErrors:
    """Braze error answers, shared by the three Braze contracts."""

    url = TRACK

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        if kind == "timeout":
            transport.add(responses.POST, self.url, body=requests.ConnectTimeout("connect timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, self.url, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(braze_error(self.url, 503, f"Service unavailable {message}"))
        elif kind == "ambiguous":
            transport.add(braze_error(self.url, 500, f"Internal server error {message}"))
        elif kind == "throttle":
            reset = int(self.fake_time.wall_clock() + retry_after)
            transport.add(braze_error(self.url, 429, f"Rate limit exceeded {message}", headers={
                "X-RateLimit-Limit": "3000", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset)}))
        elif kind == "bad_request":
            transport.add(braze_error(self.url, 400, f"Valid data must be provided {message}"))
        elif kind == "unauthorized":
            transport.add(braze_error(self.url, 401, f"Invalid API key: {message}"))

    def arrange_check(self, transport, ok):
        if ok:
            transport.add(braze_error(TRACK, 400, "Valid data must be provided in the 'attributes', "
                                                  "'events', or 'purchases' fields."))
        else:
            transport.add(braze_error(TRACK, 401, "Invalid API key"))


def host(fake_time, **overrides) -> BrazeHost:
    return BrazeHost({"rest_endpoint": REST, "api_key": API_KEY, "partner_api_key": PARTNER_KEY,
                      "client_secret": CLIENT_SECRET, **overrides}, **fake_time.kwargs())


def partner(fake_time, **overrides) -> BrazeHost:
    """Cohort import: only for a Braze technology partnership (partner and data import keys)."""
    return host(fake_time, segment_membership="cohort", **overrides)


class TestBrazeCohortContract(BrazeErrors, ConnectorContract):
    batch_limit = 1000
    url = COHORT_USERS
    secrets = (API_KEY, PARTNER_KEY, CLIENT_SECRET)

    def make_connector(self, fake_time, **overrides):
        return partner(fake_time, **overrides)

    def make_items(self, n):
        return [Member(member_id=f"user-{i}") for i in range(n)]

    def deliver(self, connector, items):
        return connector.add("likely-seg-42", items)

    def arrange_ok(self, transport):
        transport.add(responses.POST, COHORT_USERS, status=201, json={"message": "success"})

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["cohort_changes"][0]["user_ids"])
                for c in transport.calls if c.request.url == COHORT_USERS]


class TestBrazeAttributesContract(BrazeErrors, ConnectorContract):
    batch_limit = 50  # the default every Braze contract accepts
    secrets = (API_KEY, PARTNER_KEY, CLIENT_SECRET)

    def make_connector(self, fake_time, **overrides):
        return host(fake_time, **overrides)

    def make_items(self, n):
        return [UserAttributes(key=f"attr-{i}", user_id=f"user-{i}",
                               attributes={"likely_score_churn": 81, "likely_category_churn": "High"})
                for i in range(n)]

    def deliver(self, connector, items):
        return connector.update_users(attributes=items)

    def arrange_ok(self, transport):
        def reply(request):
            body = json.loads(request.body)
            return 201, {}, json.dumps({"message": "success",
                                        "attributes_processed": len(body.get("attributes", [])),
                                        "events_processed": len(body.get("events", []))})
        transport.add_callback(responses.POST, TRACK, callback=reply)

    def items_per_call(self, transport):
        return [sum(len(v) for v in json.loads(c.request.body).values())
                for c in transport.calls if c.request.url == TRACK]


class TestBrazeInAppContract(BrazeErrors, ConnectorContract):
    """In-app through an API-triggered Canvas: `POST /canvas/trigger/send`, up to 50 recipients each
    with their own `canvas_entry_properties`, answered 201 `{"dispatch_id", "message": "success"}`
    (https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_canvases/)."""

    batch_limit = 50
    url = CANVAS_SEND
    secrets = (API_KEY,)  # the only secret this connector is given

    def make_connector(self, fake_time, **overrides):
        return in_app(fake_time, **overrides)

    def make_items(self, n):
        return [Message(idempotency_key=f"k{i}", recipient_id=f"user-{i}", address=f"user-{i}",
                        subject="Welcome back", text="Your offer: 15% off", data={"offer": "15%"})
                for i in range(n)]

    def arrange_ok(self, transport):
        transport.add(responses.POST, CANVAS_SEND, status=201,
                      json={"dispatch_id": "66cdc28f8f082bc3074c0c4f6fb1f3e1", "message": "success"})

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["recipients"]) for c in transport.calls
                if c.request.url == CANVAS_SEND]


def in_app(fake_time, **overrides) -> BrazeInApp:
    return BrazeInApp({"rest_endpoint": REST, "api_key": API_KEY, "canvas_id": CANVAS_ID, **overrides},
                      **fake_time.kwargs())


def test_cohort_changes_carry_only_adds_or_removes(http, fake_time):
    http.add(responses.POST, COHORT_USERS, status=201, json={"message": "success"})
    http.add(responses.POST, COHORT_USERS, status=201, json={"message": "success"})
    connector = partner(fake_time)
    connector.add("seg-1", [Member(member_id="a"), Member(member_id="b")])
    connector.remove("seg-1", [Member(member_id="c")])
    add, remove = (json.loads(c.request.body) for c in http.calls)
    assert add == {"partner_api_key": PARTNER_KEY, "client_secret": CLIENT_SECRET, "cohort_id": "seg-1",
                   "cohort_changes": [{"user_ids": ["a", "b"]}]}
    assert remove["cohort_changes"] == [{"user_ids": ["c"], "should_remove": True}]


def test_ensure_cohort_names_it(http, fake_time):
    http.add(responses.POST, f"{REST}/partners/likely/cohorts", status=201, json={"message": "success"})
    partner(fake_time).ensure_cohort("seg-1", "Churn: High", datetime(2026, 1, 2, tzinfo=timezone.utc))
    body = json.loads(http.calls[0].request.body)
    assert body["cohort_id"] == "seg-1" and body["name"] == "Churn: High"
    assert body["created_at"] == "2026-01-02T00:00:00+00:00"


class TestBrazeMembershipContract(BrazeErrors, ConnectorContract):
    """Segment membership on a custom array attribute through `/users/track`, the path every Braze
    customer has (https://www.braze.com/docs/api/endpoints/user_data/post_user_track/)."""

    batch_limit = 50
    secrets = (API_KEY,)

    def make_connector(self, fake_time, **overrides):
        return BrazeHost({"rest_endpoint": REST, "api_key": API_KEY, **overrides}, **fake_time.kwargs())

    def make_items(self, n):
        return [Member(member_id=f"user-{i}") for i in range(n)]

    def deliver(self, connector, items):
        return connector.add("likely-seg-42", items)

    def arrange_ok(self, transport):
        def reply(request):
            body = json.loads(request.body)
            return 201, {}, json.dumps({"message": "success", "attributes_processed": len(body["attributes"])})
        transport.add_callback(responses.POST, TRACK, callback=reply)

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["attributes"]) for c in transport.calls if c.request.url == TRACK]


def test_membership_adds_and_removes_the_segment_on_an_array_attribute(http, fake_time):
    """Braze array attributes change with `{"add": [...]}` / `{"remove": [...]}`
    (https://www.braze.com/docs/api/objects_filters/user_attributes_object/)."""
    for _ in range(2):
        http.add(responses.POST, TRACK, status=201, json={"message": "success", "attributes_processed": 1})
    connector = BrazeHost({"rest_endpoint": REST, "api_key": API_KEY}, **fake_time.kwargs())
    connector.ensure_cohort("seg-1", "not used")  # no partner API call without a partnership
    added = connector.add("seg-1", [Member(member_id="a")])
    removed = connector.remove("seg-1", [Member(member_id="b")])
    add, remove = (json.loads(c.request.body) for c in http.calls)
    assert add == {"attributes": [{"external_id": "a", "likely_segments": {"add": ["seg-1"]}}]}
    assert remove == {"attributes": [{"external_id": "b", "likely_segments": {"remove": ["seg-1"]}}]}
    assert [r.status for r in added + removed] == ["sent", "sent"]


def test_cohort_import_is_marked_partner_only_in_the_settings():
    props = BrazeHost.settings_schema["properties"]
    assert props["segment_membership"]["default"] == "attributes"
    for name in ("partner_api_key", "client_secret"):
        assert "partners only" in props[name]["title"]


@pytest.mark.parametrize("limit", [None, 75])
def test_attributes_and_events_share_the_object_limit_of_the_setting(http, fake_time, limit):
    """`/users/track` takes 75 objects per request only where the Braze contract allows it; 50 is
    the default (https://www.braze.com/docs/api/endpoints/user_data/post_user_track/)."""
    per_request = limit or 50
    for _ in range(2):
        http.add(responses.POST, TRACK, status=201, json={"message": "success"})
    attributes = [UserAttributes(f"a{i}", f"u{i}", {"likely_score_churn": 50}) for i in range(50)]
    events = [HostEvent(f"e{i}", f"u{i}", "likely_category_changed",
                        {"prediction": "churn", "from": "Low", "to": "High", "note": None},
                        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) for i in range(30)]
    overrides = {"track_objects_per_request": limit} if limit else {}
    results = host(fake_time, **overrides).update_users(attributes, events)
    assert len(results) == 80 and all(r.status == "sent" for r in results)
    first, second = (json.loads(c.request.body) for c in http.calls)
    assert len(first.get("attributes", [])) + len(first.get("events", [])) == per_request
    assert len(second.get("attributes", [])) + len(second.get("events", [])) == 80 - per_request
    event = (first.get("events") or second["events"])[0]
    assert event == {"external_id": "u0", "name": "likely_category_changed",
                     "time": "2026-01-02T03:04:05+00:00",
                     "properties": {"prediction": "churn", "from": "Low", "to": "High"}}  # no null
    assert first["attributes"][0] == {"external_id": "u0", "likely_score_churn": 50}


def test_more_than_75_objects_per_request_is_refused_as_settings():
    with pytest.raises(ConfigurationError):
        BrazeHost({"rest_endpoint": REST, "api_key": API_KEY, "track_objects_per_request": 76})


def test_minor_errors_fail_only_the_named_objects(http, fake_time):
    http.add(responses.POST, TRACK, status=201, json={
        "message": "success", "attributes_processed": 1, "events_processed": 1,
        "errors": [{"type": "'external_id' or 'braze_id' or 'user_alias' is required",
                    "input_array": "attributes", "index": 1}]})
    results = host(fake_time).update_users(
        [UserAttributes("a0", "u0", {"s": 1}), UserAttributes("a1", "", {"s": 2})],
        [HostEvent("e0", "u0", "likely_category_changed")])
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert "external_id" in results[1].reason and not results[1].retryable


def test_in_app_enters_each_user_into_the_api_triggered_canvas_with_the_message(http, fake_time):
    """Braze in-app messages are shown only for SDK-logged events, never API events
    (https://www.braze.com/docs/developer_guide/in_app_messages/triggering_messages/): the message
    goes as canvas_entry_properties of an API-triggered Canvas
    (https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_canvases/)."""
    http.add(responses.POST, CANVAS_SEND, status=201, json={"dispatch_id": "d-1", "message": "success"})
    [result] = in_app(fake_time).send([Message(idempotency_key="k1", recipient_id="u1", address="u1",
                                               subject="Hi", text="Body", html=None, data={"offer": "15%"})])
    body = json.loads(http.calls[0].request.body)
    assert http.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert body == {"canvas_id": CANVAS_ID, "broadcast": False, "recipients": [{
        "external_user_id": "u1", "send_to_existing_only": True,
        "canvas_entry_properties": {"offer": "15%", "likely_idempotency_key": "k1", "title": "Hi",
                                    "body": "Body"}}]}  # no null html
    assert result.status == "sent" and result.provider_id == "d-1"
    assert not any(c.request.url == TRACK for c in http.calls)  # never the event that shows nothing


def test_in_app_through_an_api_triggered_campaign_uses_trigger_properties(http, fake_time):
    """`POST /campaigns/trigger/send`: recipients with `trigger_properties`, answered 201 with a
    dispatch_id (https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_campaigns/)."""
    http.add(responses.POST, f"{REST}/campaigns/trigger/send", status=201,
             json={"dispatch_id": "d-2", "message": "success"})
    in_app(fake_time, delivery="campaign", campaign_id="camp-9").send(
        [Message(idempotency_key="k1", recipient_id="u1", address="u1", text="Body")])
    body = json.loads(http.calls[0].request.body)
    assert body["campaign_id"] == "camp-9" and "canvas_id" not in body
    assert body["recipients"][0]["trigger_properties"] == {"likely_idempotency_key": "k1", "body": "Body"}


def test_in_app_without_its_canvas_id_is_a_configuration_error(fake_time):
    with pytest.raises(ConfigurationError) as raised:
        BrazeInApp({"rest_endpoint": REST, "api_key": API_KEY}, **fake_time.kwargs())
    assert "canvas_id" in raised.value.reason


def test_an_unknown_canvas_is_fatal_for_the_batch(http, fake_time):
    """Braze answers 400 `{"message": ...}` for a request it refuses
    (https://www.braze.com/docs/api/errors/): nothing was sent, nothing retried."""
    http.add(braze_error(CANVAS_SEND, 400, "Invalid canvas_id"))
    [result] = in_app(fake_time).send([Message(idempotency_key="k1", recipient_id="u1", address="u1",
                                               text="Body")])
    assert result.status == "failed" and not result.retryable and result.attempts == 1
