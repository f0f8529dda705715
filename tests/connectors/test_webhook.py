"""Signed outbound webhooks: Standard Webhooks signatures verified with the reference package."""
from __future__ import annotations

import base64
import json

import pytest
import requests
import responses
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.errors import ConfigurationError
from connectors.model import Message
from connectors.webhook import SignedWebhook

from .contract import ConnectorContract

URL = "https://hooks.customer.example/likely?token=hook-token-8d7f"
SECRET = "whsec_" + base64.b64encode(b"customer-signing-secret-32-bytes!").decode()


def message(i: int) -> Message:
    return Message(idempotency_key=f"msg_{i}", recipient_id=f"user-{i}", address=f"user-{i}",
                   subject="Offer", text="10% off", data={"tier": "High", "score": 81})


class TestWebhookContract(ConnectorContract):
    batch_limit = 1
    secrets = (URL, SECRET, SECRET.removeprefix("whsec_"))

    def make_connector(self, fake_time, **overrides):
        return SignedWebhook({"url": URL, "secret": SECRET, **overrides}, **fake_time.kwargs())

    def make_items(self, n):
        return [message(i) for i in range(n)]

    def arrange_ok(self, transport):
        transport.add(responses.POST, URL, status=204)

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        body = {"error": message}
        if kind == "timeout":
            transport.add(responses.POST, URL, body=requests.ConnectTimeout("connect timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, URL, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(responses.POST, URL, status=503, json=body)
        elif kind == "ambiguous":
            transport.add(responses.POST, URL, status=502, json=body)
        elif kind == "throttle":
            transport.add(responses.POST, URL, status=429, json=body,
                          headers={"Retry-After": str(int(retry_after))})
        elif kind == "bad_request":
            transport.add(responses.POST, URL, status=422, json=body)
        elif kind == "unauthorized":
            transport.add(responses.POST, URL, status=401, json=body)

    def arrange_check(self, transport, ok):
        transport.add(responses.POST, URL, status=200 if ok else 403)

    def items_per_call(self, transport):
        counts = []
        for call in transport.calls:
            data = json.loads(call.request.body)["data"]
            counts.append(len(data["messages"]) if "messages" in data else 1)
        return counts


class TestBatchedWebhookContract(TestWebhookContract):
    batch_limit = 5

    def make_connector(self, fake_time, **overrides):
        return super().make_connector(fake_time, mode="batch", batch_size=self.batch_limit, **overrides)


def verify(request) -> dict:
    """Verify exactly as a receiver would, with the reference implementation."""
    headers = {k: v for k, v in request.headers.items()}
    return Webhook(SECRET).verify(request.body, headers)


def test_signature_verifies_and_webhook_id_is_the_idempotency_key(http, fake_time):
    fake_time.epoch = __import__("time").time() - fake_time.now  # a timestamp the verifier accepts
    http.add(responses.POST, URL, status=200)
    [result] = TestWebhookContract().make_connector(fake_time).send([message(7)])
    request = http.calls[0].request
    assert request.headers["webhook-id"] == "msg_7" == result.provider_id
    assert request.headers["webhook-signature"].startswith("v1,")
    payload = verify(request)
    assert payload["type"] == "likely.message"
    assert payload["data"]["idempotency_key"] == "msg_7" and payload["data"]["data"]["score"] == 81


def test_tampered_body_fails_verification(http, fake_time):
    fake_time.epoch = __import__("time").time() - fake_time.now
    http.add(responses.POST, URL, status=200)
    TestWebhookContract().make_connector(fake_time).send([message(1)])
    request = http.calls[0].request
    request.body = request.body.replace(b"10% off", b"90% off")
    with pytest.raises(WebhookVerificationError):
        verify(request)


def test_signature_matches_the_standard_formula(http, fake_time):
    import hashlib
    import hmac
    http.add(responses.POST, URL, status=200)
    TestWebhookContract().make_connector(fake_time).send([message(1)])
    request = http.calls[0].request
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"


def test_batch_id_is_stable_for_the_same_messages(http, fake_time):
    http.add(responses.POST, URL, status=200)
    http.add(responses.POST, URL, status=200)
    connector = TestBatchedWebhookContract().make_connector(fake_time)
    first = connector.send([message(1), message(2)])
    second = connector.send([message(1), message(2)])
    assert first[0].provider_id.startswith("batch_")
    assert first[0].provider_id == first[1].provider_id == second[0].provider_id
    assert http.calls[0].request.headers["webhook-id"] == http.calls[1].request.headers["webhook-id"]


def test_secret_must_be_whsec(fake_time):
    with pytest.raises(ConfigurationError) as raised:
        SignedWebhook({"url": URL, "secret": "plain-secret-value"}, **fake_time.kwargs())
    assert "plain-secret-value" not in str(raised.value)


def test_url_must_be_https(fake_time):
    with pytest.raises(ConfigurationError, match="url"):
        SignedWebhook({"url": "http://insecure.example/hook", "secret": SECRET}, **fake_time.kwargs())
