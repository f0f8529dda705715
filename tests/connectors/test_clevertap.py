"""CleverTap host and in-app over /1/upload, with CleverTap's 200-with-unprocessed answers."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import requests
import responses

from connectors.host.clevertap import CleverTapHost
from connectors.in_app.clevertap import CleverTapInApp
from connectors.model import HostEvent, Member, Message, UserAttributes

from .contract import ConnectorContract

BASE = "https://in1.api.clevertap.com"
UPLOAD = f"{BASE}/1/upload"
PASSCODE = "CT-PASS-QWERTY-1234"


def ct_fail(status, error, headers=None):
    return responses.Response(responses.POST, UPLOAD, status=status, headers=headers or {},
                              json={"status": "fail", "error": error, "code": status})


def all_processed(request):
    records = json.loads(request.body)["d"]
    return 200, {}, json.dumps({"status": "success", "processed": len(records), "unprocessed": []})


def host(fake_time, **overrides):
    return CleverTapHost({"base_url": BASE, "account_id": "W9R-486-4W5Z", "passcode": PASSCODE,
                          **overrides}, **fake_time.kwargs())


class TestCleverTapContract(ConnectorContract):
    batch_limit = 1000
    secrets = (PASSCODE,)
    # A 429 waits CleverTap's documented ten minutes whatever Retry-After says (tested below).
    supports_retry_after = False

    def make_connector(self, fake_time, **overrides):
        return host(fake_time, **overrides)

    def make_items(self, n):
        return [UserAttributes(f"attr-{i}", f"user-{i}", {"likely_score_churn": 64}) for i in range(n)]

    def deliver(self, connector, items):
        return connector.update_users(attributes=items)

    def arrange_ok(self, transport):
        transport.add_callback(responses.POST, UPLOAD, callback=all_processed)

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        if kind == "timeout":
            transport.add(responses.POST, UPLOAD, body=requests.ConnectTimeout("timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, UPLOAD, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(ct_fail(503, f"Service Unavailable {message}"))
        elif kind == "ambiguous":
            transport.add(ct_fail(500, f"Internal Server Error {message}"))
        elif kind == "throttle":
            transport.add(ct_fail(429, f"Too many concurrent requests {message}",
                                  headers={"Retry-After": str(int(retry_after))}))
        elif kind == "bad_request":
            transport.add(ct_fail(400, f"Bad Request {message}"))
        elif kind == "unauthorized":
            transport.add(ct_fail(401, f"Account Id or Passcode mismatch {message}"))

    def arrange_check(self, transport, ok):
        if ok:
            transport.add(responses.POST, UPLOAD, json={"status": "success", "processed": 0,
                                                        "unprocessed": []})
        else:
            transport.add(ct_fail(401, "Account Id or Passcode mismatch"))

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["d"]) for c in transport.calls]


class TestCleverTapSegmentsContract(TestCleverTapContract):
    def make_items(self, n):
        return [Member(member_id=f"user-{i}") for i in range(n)]

    def deliver(self, connector, items):
        return connector.add("churn-high", items)


class TestCleverTapInAppContract(TestCleverTapContract):
    def make_connector(self, fake_time, **overrides):
        return CleverTapInApp({"base_url": BASE, "account_id": "W9R-486-4W5Z", "passcode": PASSCODE,
                               **overrides}, **fake_time.kwargs())

    def make_items(self, n):
        return [Message(idempotency_key=f"k{i}", recipient_id=f"user-{i}", address=f"user-{i}",
                        subject="Hi", text="15% off") for i in range(n)]

    def deliver(self, connector, items):
        return connector.send(items)


def test_headers_and_record_shapes(http, fake_time):
    http.add_callback(responses.POST, UPLOAD, callback=all_processed)
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    host(fake_time).update_users([UserAttributes("a", "u1", {"likely_category_churn": "High"})],
                                 [HostEvent("e", "u1", "likely_category_changed", {"to": "High"}, when)])
    request = http.calls[0].request
    assert request.headers["X-CleverTap-Account-Id"] == "W9R-486-4W5Z"
    assert request.headers["X-CleverTap-Passcode"] == PASSCODE
    assert json.loads(request.body)["d"] == [
        {"identity": "u1", "type": "profile", "profileData": {"likely_category_churn": "High"}},
        {"identity": "u1", "type": "event", "evtName": "likely_category_changed",
         "evtData": {"to": "High"}, "ts": int(when.timestamp())}]


def test_unprocessed_records_inside_a_200_fail_one_by_one(http, fake_time):
    def reply(request):
        records = json.loads(request.body)["d"]
        return 200, {}, json.dumps({"status": "partial", "processed": 2, "unprocessed": [
            {"status": "fail", "code": 523, "error": "Missing identity", "record": records[1]}]})
    http.add_callback(responses.POST, UPLOAD, callback=reply)
    results = host(fake_time).update_users(
        [UserAttributes("a0", "u0", {"s": 1}), UserAttributes("a1", "", {"s": 2}),
         UserAttributes("a2", "u2", {"s": 3})])
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert results[1].reason == "clevertap_523: Missing identity" and not results[1].retryable


def test_misc_server_error_record_is_retried(http, fake_time):
    def reply(request):
        [record] = json.loads(request.body)["d"]
        return 200, {}, json.dumps({"status": "fail", "processed": 0, "unprocessed": [
            {"status": "fail", "code": 555, "error": "Miscellaneous server error", "record": record}]})
    http.add_callback(responses.POST, UPLOAD, callback=reply)
    http.add_callback(responses.POST, UPLOAD, callback=all_processed)
    [result] = host(fake_time).update_users([UserAttributes("a0", "u0", {"s": 1})])
    assert result.status == "sent" and result.attempts == 2


def test_segment_membership_uses_multi_value_add_and_remove(http, fake_time):
    http.add_callback(responses.POST, UPLOAD, callback=all_processed)
    http.add_callback(responses.POST, UPLOAD, callback=all_processed)
    connector = host(fake_time)
    connector.add("churn-high", [Member(member_id="u1")])
    connector.remove("churn-high", [Member(member_id="u2")])
    added, removed = (json.loads(c.request.body)["d"][0] for c in http.calls)
    assert added == {"identity": "u1", "type": "profile",
                     "profileData": {"likely_segments": {"$add": ["churn-high"]}}}
    assert removed["profileData"] == {"likely_segments": {"$remove": ["churn-high"]}}


def test_in_app_value_over_512_bytes_is_refused(http, fake_time):
    connector = CleverTapInApp({"base_url": BASE, "account_id": "A", "passcode": PASSCODE},
                               **fake_time.kwargs())
    [result] = connector.send([Message("k", "u", "u", subject="Hi", html="<p>" + "x" * 600 + "</p>")])
    assert result.status == "failed" and result.reason == "property_too_long: html"
    assert len(http.calls) == 0


def test_too_many_concurrent_requests_waits_ten_minutes(http, fake_time):
    """CleverTap's 429: "Too many requests were made concurrently. ... Please try again after 10
    minutes." (https://developer.clevertap.com/docs/api-errors). No in-call retry seconds later:
    the item comes back retryable no sooner than 600 s."""
    http.add(ct_fail(429, "Too many concurrent requests", headers={"Retry-After": "2"}))
    [result] = host(fake_time).update_users(attributes=[UserAttributes("a0", "u0", {"s": 1})])
    assert result.status == "failed" and result.retryable and result.retry_after >= 600
    assert result.attempts == 1 and fake_time.sleeps == []
