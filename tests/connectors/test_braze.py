"""Braze host (cohort import, /users/track) and Braze in-app, faked with Braze's real bodies."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import requests
import responses

from connectors.host.braze import BrazeHost
from connectors.in_app.braze import BrazeInApp
from connectors.model import HostEvent, Member, Message, UserAttributes

from .contract import ConnectorContract

REST = "https://rest.fra-01.braze.eu"
TRACK = f"{REST}/users/track"
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


class TestBrazeCohortContract(BrazeErrors, ConnectorContract):
    batch_limit = 1000
    url = COHORT_USERS
    secrets = (API_KEY, PARTNER_KEY, CLIENT_SECRET)

    def make_connector(self, fake_time, **overrides):
        return host(fake_time, **overrides)

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
    batch_limit = 75
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


class TestBrazeInAppContract(TestBrazeAttributesContract):
    secrets = (API_KEY,)  # the only secret this connector is given

    def make_connector(self, fake_time, **overrides):
        return BrazeInApp({"rest_endpoint": REST, "api_key": API_KEY, **overrides}, **fake_time.kwargs())

    def make_items(self, n):
        return [Message(idempotency_key=f"k{i}", recipient_id=f"user-{i}", address=f"user-{i}",
                        subject="Welcome back", text="Your offer: 15% off", data={"offer": "15%"})
                for i in range(n)]

    def deliver(self, connector, items):
        return connector.send(items)


def test_cohort_changes_carry_only_adds_or_removes(http, fake_time):
    http.add(responses.POST, COHORT_USERS, status=201, json={"message": "success"})
    http.add(responses.POST, COHORT_USERS, status=201, json={"message": "success"})
    connector = host(fake_time)
    connector.add("seg-1", [Member(member_id="a"), Member(member_id="b")])
    connector.remove("seg-1", [Member(member_id="c")])
    add, remove = (json.loads(c.request.body) for c in http.calls)
    assert add == {"partner_api_key": PARTNER_KEY, "client_secret": CLIENT_SECRET, "cohort_id": "seg-1",
                   "cohort_changes": [{"user_ids": ["a", "b"]}]}
    assert remove["cohort_changes"] == [{"user_ids": ["c"], "should_remove": True}]


def test_ensure_cohort_names_it(http, fake_time):
    http.add(responses.POST, f"{REST}/partners/likely/cohorts", status=201, json={"message": "success"})
    host(fake_time).ensure_cohort("seg-1", "Churn: High", datetime(2026, 1, 2, tzinfo=timezone.utc))
    body = json.loads(http.calls[0].request.body)
    assert body["cohort_id"] == "seg-1" and body["name"] == "Churn: High"
    assert body["created_at"] == "2026-01-02T00:00:00+00:00"


def test_attributes_and_events_share_the_75_object_limit(http, fake_time):
    for _ in range(2):
        http.add(responses.POST, TRACK, status=201, json={"message": "success"})
    attributes = [UserAttributes(f"a{i}", f"u{i}", {"likely_score_churn": 50}) for i in range(50)]
    events = [HostEvent(f"e{i}", f"u{i}", "likely_category_changed",
                        {"prediction": "churn", "from": "Low", "to": "High"},
                        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) for i in range(30)]
    results = host(fake_time).update_users(attributes, events)
    assert len(results) == 80 and all(r.status == "sent" for r in results)
    first, second = (json.loads(c.request.body) for c in http.calls)
    assert len(first["attributes"]) + len(first["events"]) == 75
    assert len(second["events"]) == 5
    assert first["events"][0] == {"external_id": "u0", "name": "likely_category_changed",
                                  "time": "2026-01-02T03:04:05+00:00",
                                  "properties": {"prediction": "churn", "from": "Low", "to": "High"}}
    assert first["attributes"][0] == {"external_id": "u0", "likely_score_churn": 50}


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


def test_in_app_event_carries_the_message(http, fake_time):
    http.add(responses.POST, TRACK, status=201, json={"message": "success", "events_processed": 1})
    connector = BrazeInApp({"rest_endpoint": REST, "api_key": API_KEY}, **fake_time.kwargs())
    connector.send([Message(idempotency_key="k1", recipient_id="u1", address="u1", subject="Hi",
                            text="Body", html="<b>Body</b>", data={"offer": "15%"})])
    [event] = json.loads(http.calls[0].request.body)["events"]
    assert event["external_id"] == "u1" and event["name"] == "likely_in_app_message"
    assert event["properties"] == {"offer": "15%", "likely_idempotency_key": "k1", "title": "Hi",
                                   "body": "Body", "html": "<b>Body</b>"}


def test_cohorts_without_partner_credentials_are_a_configuration_error(fake_time):
    connector = BrazeHost({"rest_endpoint": REST, "api_key": API_KEY}, **fake_time.kwargs())
    [result] = connector.add("seg", [Member(member_id="a")])
    assert result.configuration_error and "partner_api_key" in result.reason
