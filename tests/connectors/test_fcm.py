"""FCM HTTP v1, faked with `responses` using FCM's real error bodies; OAuth via google-auth."""
from __future__ import annotations

import json
import threading

import pytest
import requests
import responses

from connectors.errors import ConfigurationError
from connectors.model import Message
from connectors.push.fcm import FcmPush

from .contract import ConnectorContract
from .google_keys import ACCESS_TOKEN, TOKEN_URI, service_account_json, token_ok, token_refused

SEND = "https://fcm.googleapis.com/v1/projects/likely-test/messages:send"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
PRIVATE_KEY = json.loads(service_account_json())["private_key"]


def fcm_error(status: int, canonical: str, message: str, error_code: str | None = None, headers=None):
    body = {"error": {"code": status, "message": message, "status": canonical}}
    if error_code:
        body["error"]["details"] = [{"@type": FCM_ERROR, "errorCode": error_code}]
    return responses.Response(responses.POST, SEND, status=status, json=body, headers=headers or {})


def push(i: int, **changes) -> Message:
    fields = dict(idempotency_key=f"key-{i}", recipient_id=f"user-{i}", address=f"token-{i}",
                  subject="Your offer", text="20% off today", data={"offer": 20, "tier": "High"})
    fields.update(changes)
    return Message(**fields)


class TestFcmContract(ConnectorContract):
    batch_limit = 1  # FCM v1 takes one message per request
    throttle_wait = 60.0  # QUOTA_EXCEEDED: at least a minute, whatever Retry-After says
    secrets = (PRIVATE_KEY.splitlines()[1], ACCESS_TOKEN)

    @pytest.fixture
    def transport(self, http):
        self._token_arranged = False
        return http

    def _token(self, transport):
        if not self._token_arranged:
            token_ok(transport)
            self._token_arranged = True

    def make_connector(self, fake_time, **overrides):
        settings = {"project_id": "likely-test", "service_account_json": service_account_json(),
                    "concurrency": 4, **overrides}
        return FcmPush(settings, **fake_time.kwargs())

    def make_items(self, n):
        return [push(i) for i in range(n)]

    def arrange_ok(self, transport):
        self._token(transport)
        transport.add(responses.POST, SEND, json={"name": "projects/likely-test/messages/0:1500415314455276%31bd1c9631bd1c96"})

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        self._token(transport)
        if kind == "timeout":
            transport.add(responses.POST, SEND, body=requests.ConnectTimeout("timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, SEND, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(fcm_error(503, "UNAVAILABLE", message, "UNAVAILABLE"))
        elif kind == "ambiguous":
            transport.add(fcm_error(500, "INTERNAL", message, "INTERNAL"))
        elif kind == "throttle":
            transport.add(fcm_error(429, "RESOURCE_EXHAUSTED", message, "QUOTA_EXCEEDED",
                                    headers={"Retry-After": str(int(retry_after))}))
        elif kind == "bad_request":
            transport.add(fcm_error(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT"))
        elif kind == "unauthorized":
            # An expired OAuth token is refreshed once; a second 401 is a configuration error.
            transport.add(fcm_error(401, "UNAUTHENTICATED", message))
            token_ok(transport, "ya29.c.second-token")
            transport.add(fcm_error(401, "UNAUTHENTICATED", message))

    def arrange_check(self, transport, ok):
        (token_ok if ok else token_refused)(transport)

    def items_per_call(self, transport):
        return [1 for c in transport.calls if c.request.url == SEND]


def connector(fake_time, **overrides) -> FcmPush:
    return TestFcmContract().make_connector(fake_time, **overrides)


def test_request_shape_bearer_token_and_string_data(http, fake_time):
    token_ok(http)
    http.add(responses.POST, SEND, json={"name": "projects/likely-test/messages/1"})
    [result] = connector(fake_time).send([push(1, data={"offer": 20, "vip": True, "items": [1, 2]})])
    assert result.status == "sent" and result.provider_id == "projects/likely-test/messages/1"
    token_request, send_request = (c.request for c in http.calls)
    assert token_request.url == TOKEN_URI
    token_body = token_request.body if isinstance(token_request.body, str) else token_request.body.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in token_body
    assert "assertion=" in token_body  # a JWT signed by google-auth with the service-account key
    assert send_request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    message = json.loads(send_request.body)["message"]
    assert message["token"] == "token-1"
    assert message["notification"] == {"title": "Your offer", "body": "20% off today"}
    assert message["data"] == {"offer": "20", "vip": "true", "items": "[1,2]",
                               "likely_idempotency_key": "key-1"}
    assert all(isinstance(v, str) for v in message["data"].values())


def test_unregistered_token_is_marked_invalid(http, fake_time):
    token_ok(http)
    http.add(fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"))
    [result] = connector(fake_time).send([push(1)])
    assert result.status == "failed" and result.invalid_address and not result.retryable
    assert result.reason.startswith("unregistered")


def test_a_token_fcm_calls_invalid_is_retired_like_an_unregistered_one(http, fake_time):
    """FCM's documented answer for a bad token: 400 INVALID_ARGUMENT, FcmError errorCode
    INVALID_ARGUMENT, "The registration token is not a valid FCM registration token" (Example 2 of
    https://firebase.google.com/docs/cloud-messaging/error-codes). The token is dead: the plugin
    must retire it and try the user's other devices, as for UNREGISTERED."""
    token_ok(http)
    http.add(fcm_error(400, "INVALID_ARGUMENT",
                       "The registration token is not a valid FCM registration token",
                       "INVALID_ARGUMENT"))
    http.add(responses.POST, SEND, json={"name": "projects/likely-test/messages/2"})
    results = connector(fake_time, concurrency=1).send([push(1), push(2)])
    assert results[0].status == "failed" and results[0].invalid_address and not results[0].retryable
    assert results[0].reason.startswith("invalid_registration_token")
    assert results[1].status == "sent"


def test_an_invalid_message_field_is_fatal_for_that_message_and_keeps_the_token(http, fake_time):
    """Example 1 of https://firebase.google.com/docs/cloud-messaging/error-codes: a bad value in
    the message, named by a google.rpc.BadRequest field violation. The token is fine."""
    token_ok(http)
    http.add(responses.POST, SEND, status=400, json={"error": {
        "code": 400, "message": "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
        "status": "INVALID_ARGUMENT", "details": [{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.data[0].value",
                                 "description": "Invalid value at 'message.data[0].value' (TYPE_STRING), 12"}]}]}})
    [result] = connector(fake_time).send([push(1)])
    assert result.status == "failed" and not result.retryable and not result.invalid_address


def test_quota_exceeded_waits_for_the_quota_window_not_a_second(http, fake_time):
    """QUOTA_EXCEEDED (429): "retry using exponential backoff with a minimum initial delay of
    1 minute" (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode). A Retry-After
    of 3 s, or none, must not bring the retry forward."""
    token_ok(http)
    http.add(fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED",
                       headers={"Retry-After": "3"}))
    http.add(fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED"))
    [result] = connector(fake_time, max_attempts=2).send([push(1)])
    assert fake_time.sleeps and min(fake_time.sleeps) >= 60
    assert result.status == "failed" and result.retryable and result.retry_after >= 60


def test_unavailable_is_retried_honouring_retry_after(http, fake_time):
    """UNAVAILABLE (503): the server is overloaded and did not take the message; retry after the
    Retry-After it sends (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode)."""
    token_ok(http)
    http.add(fcm_error(503, "UNAVAILABLE", "try later", "UNAVAILABLE", headers={"Retry-After": "3"}))
    http.add(responses.POST, SEND, json={"name": "projects/likely-test/messages/3"})
    [result] = connector(fake_time).send([push(1)])
    assert result.status == "sent" and result.attempts == 2 and fake_time.sleeps[0] >= 3


def test_internal_error_may_have_delivered_and_is_not_resent(http, fake_time):
    """INTERNAL (500) "an unknown internal error occurred": FCM may have delivered the message and
    does not de-duplicate, so it is ambiguous, never resent within the call."""
    token_ok(http)
    http.add(fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"))
    [result] = connector(fake_time).send([push(1)])
    assert result.status == "failed" and result.ambiguous and result.attempts == 1


def test_permission_denied_is_a_configuration_error(http, fake_time):
    token_ok(http)
    http.add(fcm_error(403, "PERMISSION_DENIED", "Firebase Cloud Messaging API has not been used"))
    [result] = connector(fake_time).send([push(1)])
    assert result.configuration_error and not result.retryable


def test_payload_over_4kb_is_refused_before_sending(http, fake_time):
    results = connector(fake_time).send([push(1, data={"blob": "x" * 4100})])
    assert results[0].status == "failed" and results[0].reason.startswith("payload_too_large")
    assert len(http.calls) == 0


def test_reserved_data_keys_are_refused(http, fake_time):
    [result] = connector(fake_time).send([push(1, data={"google.c.a": "1"})])
    assert result.status == "failed" and "reserved_data_key" in result.reason


def test_concurrency_is_bounded_by_the_pool(fake_time):
    limit, total = 4, 12
    active, peak, lock = 0, 0, threading.Lock()
    barrier = threading.Barrier(limit, timeout=5)

    def reply(request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            barrier.wait()  # proves `limit` requests are in flight together
        except threading.BrokenBarrierError:
            pass
        with lock:
            active -= 1
        return 200, {}, json.dumps({"name": "projects/likely-test/messages/x"})

    with responses.RequestsMock() as http:  # default registry: the callback answers every send
        token_ok(http)
        http.add_callback(responses.POST, SEND, callback=reply)
        results = connector(fake_time, concurrency=limit).send([push(i) for i in range(total)])
    assert all(r.status == "sent" for r in results)
    assert peak == limit


def test_check_fetches_a_token_with_the_service_account(http, fake_time):
    token_refused(http)
    with pytest.raises(ConfigurationError, match="invalid_grant"):
        connector(fake_time).check()


def test_bad_service_account_json_is_a_configuration_error(fake_time):
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        connector(fake_time, service_account_json="{not json")
