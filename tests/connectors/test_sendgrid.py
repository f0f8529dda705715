"""SendGrid v3 mail/send, faked at the HTTP layer with SendGrid's real bodies and headers."""
from __future__ import annotations

import json

import pytest
import requests
import responses

from connectors.email.sendgrid import SendgridEmail
from connectors.model import Message

from .contract import ConnectorContract

SEND = "https://api.sendgrid.com/v3/mail/send"
API_KEY = "SG.fake-key-Zx9.secretpart"


def message(i: int, **changes) -> Message:
    fields = dict(idempotency_key=f"key-{i}", recipient_id=f"user-{i}", address=f"user{i}@example.com",
                  subject=f"Hello {i}", text=f"Hi user {i}", html=f"<p>Hi user {i}</p>",
                  unsubscribe_url=f"https://likely.example/u/{i}")
    fields.update(changes)
    return Message(**fields)


def sendgrid_error(status: int, message: str, field=None, headers=None):
    body = {"errors": [{"message": message, "field": field, "help": None}]}
    return responses.Response(responses.POST, SEND, status=status, json=body, headers=headers or {})


class TestSendgridContract(ConnectorContract):
    batch_limit = 1000
    secrets = (API_KEY,)

    def make_connector(self, fake_time, **overrides):
        settings = {"api_key": API_KEY, "from_email": "news@shop.example", "from_name": "Shop",
                    "enabled": True, **overrides}
        return SendgridEmail(settings, **fake_time.kwargs())

    def make_items(self, n):
        return [message(i) for i in range(n)]

    def arrange_ok(self, transport):
        transport.add(responses.POST, SEND, status=202, body="",
                      headers={"X-Message-Id": "W9xDFWiNQv-8gbsyhGH-Mg"})

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        if kind == "timeout":
            transport.add(responses.POST, SEND, body=requests.ConnectTimeout("connect timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, SEND, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(sendgrid_error(503, message))
        elif kind == "ambiguous":
            transport.add(sendgrid_error(500, message))
        elif kind == "throttle":
            reset = int(self.fake_time.wall_clock() + retry_after)
            transport.add(sendgrid_error(429, message, headers={
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset)}))
        elif kind == "bad_request":
            transport.add(sendgrid_error(400, message, field="personalizations.0.to.0.email"))
        elif kind == "unauthorized":
            transport.add(sendgrid_error(401, message))

    def arrange_check(self, transport, ok):
        scopes = "https://api.sendgrid.com/v3/scopes"
        if ok:
            transport.add(responses.GET, scopes, json={"scopes": ["mail.send", "alerts.read"]})
        else:
            transport.add(responses.GET, scopes, status=401, json={"errors": [
                {"field": None, "message": "authorization required"}]})

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["personalizations"]) for c in transport.calls
                if c.request.url == SEND]


def test_request_carries_per_recipient_personalization(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "abc123"})
    connector = TestSendgridContract().make_connector(fake_time)
    [result] = connector.send([message(1)])
    assert result.status == "sent" and result.provider_id == "abc123"
    request = http.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    body = json.loads(request.body)
    [p] = body["personalizations"]
    assert p["to"] == [{"email": "user1@example.com"}]
    assert p["subject"] == "Hello 1"
    assert p["headers"] == {"List-Unsubscribe": "<https://likely.example/u/1>",
                            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert p["custom_args"] == {"likely_idempotency_key": "key-1", "likely_recipient_id": "user-1"}
    assert p["substitutions"] == {"-likely_text-": "Hi user 1", "-likely_html-": "<p>Hi user 1</p>"}
    assert body["content"][0] == {"type": "text/plain", "value": "-likely_text-"}
    assert body["from"] == {"email": "news@shop.example", "name": "Shop"}


def test_dynamic_template_uses_template_data(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "t1"})
    connector = TestSendgridContract().make_connector(fake_time, template_id="d-123")
    connector.send([message(1, data={"offer": "10%", "likelihood_category": "High"})])
    body = json.loads(http.calls[0].request.body)
    assert body["template_id"] == "d-123" and "content" not in body
    data = body["personalizations"][0]["dynamic_template_data"]
    assert data["offer"] == "10%" and data["subject"] == "Hello 1"
    assert data["unsubscribe_url"] == "https://likely.example/u/1"


def test_missing_or_plain_http_unsubscribe_link_is_skipped(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "x"})
    connector = TestSendgridContract().make_connector(fake_time)
    results = connector.send([message(1, unsubscribe_url=None),
                              message(2, unsubscribe_url="http://insecure.example/u"),
                              message(3, address=None), message(4)])
    assert [(r.status, r.reason) for r in results[:3]] == [
        ("skipped", "no_https_unsubscribe_url"), ("skipped", "no_https_unsubscribe_url"),
        ("skipped", "no_email_address")]
    assert results[3].status == "sent"
    assert len(json.loads(http.calls[0].request.body)["personalizations"]) == 1


def test_400_blaming_one_personalization_fails_it_and_resends_the_rest(http, fake_time):
    http.add(sendgrid_error(400, "Does not contain a valid address.",
                            field="personalizations.1.to.0.email"))
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "second"})
    connector = TestSendgridContract().make_connector(fake_time)
    results = connector.send([message(0), message(1), message(2)])
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert not results[1].retryable and "personalizations.1.to.0.email" in results[1].reason
    resent = json.loads(http.calls[1].request.body)["personalizations"]
    assert [p["to"][0]["email"] for p in resent] == ["user0@example.com", "user2@example.com"]


def test_400_about_the_whole_request_fails_the_batch(http, fake_time):
    http.add(sendgrid_error(400, "The from address does not match a verified Sender Identity.",
                            field="from"))
    results = TestSendgridContract().make_connector(fake_time).send([message(0), message(1)])
    assert all(r.status == "failed" and not r.retryable for r in results)
    assert "verified Sender Identity" in results[0].reason


def test_oversized_body_goes_alone_with_literal_content(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "a"})
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "b"})
    big = message(9, html="<p>" + "x" * 12_000 + "</p>")
    results = TestSendgridContract().make_connector(fake_time).send([message(1), big])
    assert [r.status for r in results] == ["sent", "sent"]
    alone = json.loads(http.calls[1].request.body)
    assert "substitutions" not in alone["personalizations"][0]
    assert alone["content"][1]["value"].startswith("<p>xxx")


def test_check_requires_mail_send_scope(http, fake_time):
    http.add(responses.GET, "https://api.sendgrid.com/v3/scopes", json={"scopes": ["alerts.read"]})
    from connectors.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="mail.send"):
        TestSendgridContract().make_connector(fake_time).check()


def test_a_later_request_failing_never_unsends_an_earlier_one(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "first"})
    http.add(sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked"))
    big = message(9, html="<p>" + "x" * 12_000 + "</p>")
    results = TestSendgridContract().make_connector(fake_time).send([message(1), big])
    assert results[0].status == "sent" and results[0].provider_id == "first"
    assert results[1].status == "failed" and results[1].configuration_error


def test_an_empty_subject_is_skipped_before_any_request(http, fake_time):
    """SendGrid requires a subject of at least one character
    (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send, `subject`): an empty
    rendered subject would get the whole request refused, so that message is skipped alone."""
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "ok"})
    results = TestSendgridContract().make_connector(fake_time).send(
        [message(0), message(1, subject="  "), message(2, subject=None)])
    assert [(r.status, r.reason) for r in results] == [("sent", None), ("skipped", "empty_subject"),
                                                      ("skipped", "empty_subject")]
    assert len(json.loads(http.calls[0].request.body)["personalizations"]) == 1


def test_a_dynamic_template_brings_its_own_subject(http, fake_time):
    http.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "ok"})
    [result] = TestSendgridContract().make_connector(fake_time, template_id="d-123").send(
        [message(0, subject=None)])
    assert result.status == "sent"


def test_a_400_naming_no_recipient_is_split_until_the_bad_message_fails_alone(fake_time):
    """SendGrid refuses a whole request with 400 `{"errors": [{"field", "message", "help"}]}`
    (https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors),
    not always naming the personalization at fault. The fake refuses every request carrying the
    bad message, like SendGrid would; the other messages must still go out, each once."""
    bad = "user5@example.com"
    delivered: list[str] = []

    def sendgrid(request):
        emails = [p["to"][0]["email"] for p in json.loads(request.body)["personalizations"]]
        if bad in emails:
            return 400, {}, json.dumps({"errors": [{"message": "Invalid type. Expected: string",
                                                    "field": None, "help": None}]})
        delivered.extend(emails)
        return 202, {"X-Message-Id": f"m{len(delivered)}"}, ""

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, SEND, callback=sendgrid)
        results = TestSendgridContract().make_connector(fake_time).send([message(i) for i in range(8)])
        requests_made = len(rsps.calls)
    assert [r.status for r in results] == ["sent"] * 5 + ["failed"] + ["sent"] * 2
    assert not results[5].retryable and results[5].attempts == 1
    assert sorted(delivered) == sorted(f"user{i}@example.com" for i in range(8) if i != 5)
    assert requests_made <= 2 * 3 + 1  # a bisection, not one request per message
