"""Google Customer Match through the Data Manager API, faked with its documented bodies."""
from __future__ import annotations

import json

import pytest
import requests
import responses

from connectors.ads.google import GoogleCustomerMatch
from connectors.hashing import sha256_hex
from connectors.model import Member

from .contract import ConnectorContract
from .google_keys import ACCESS_TOKEN, service_account_json, token_ok, token_refused

INGEST = "https://datamanager.googleapis.com/v1/audienceMembers:ingest"
REMOVE = "https://datamanager.googleapis.com/v1/audienceMembers:remove"
PRIVATE_KEY = json.loads(service_account_json())["private_key"]


def rpc_error(status, canonical, message, violations=None, headers=None, endpoint=INGEST):
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": canonical,
                "domain": "datamanager.googleapis.com"}]
    if violations:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations})
    body = {"error": {"code": status, "message": message, "status": canonical, "details": details}}
    return responses.Response(responses.POST, endpoint, status=status, json=body, headers=headers or {})


class TestGoogleContract(ConnectorContract):
    batch_limit = 10_000
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
        settings = {"service_account_json": service_account_json(), "operating_account_id": "1234567890",
                    "terms_of_service_accepted": True, **overrides}
        return GoogleCustomerMatch(settings, **fake_time.kwargs())

    def make_items(self, n):
        return [Member(member_id=f"user-{i}", email=f"user{i}@example.com") for i in range(n)]

    def deliver(self, connector, items):
        return connector.add("7090123456", items)

    def arrange_ok(self, transport):
        self._token(transport)
        transport.add(responses.POST, INGEST, json={"requestId": "126365e1-16d0-4c81-9de9-f362711e250a"})

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        self._token(transport)
        if kind == "timeout":
            transport.add(responses.POST, INGEST, body=requests.ConnectTimeout("timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, INGEST, body=requests.ReadTimeout("read timed out"))
        elif kind == "server":
            transport.add(rpc_error(503, "UNAVAILABLE", message))
        elif kind == "ambiguous":
            transport.add(rpc_error(500, "INTERNAL", message))
        elif kind == "throttle":
            transport.add(rpc_error(429, "RESOURCE_EXHAUSTED", message,
                                    headers={"Retry-After": str(int(retry_after))}))
        elif kind == "bad_request":
            transport.add(rpc_error(400, "INVALID_ARGUMENT", "There was a problem with the request.", [
                {"field": "audience_members.audience_members[0].user_data.user_identifiers",
                 "description": f"Email is not hex encoded. {message}", "reason": "INVALID_HEX_ENCODING"}]))
        elif kind == "unauthorized":
            transport.add(rpc_error(403, "PERMISSION_DENIED", f"The caller does not have permission {message}"))

    def arrange_check(self, transport, ok):
        (token_ok if ok else token_refused)(transport)

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["audienceMembers"]) for c in transport.calls
                if c.request.url == INGEST]


def connector(fake_time, **overrides):
    return TestGoogleContract().make_connector(fake_time, **overrides)


def test_ingest_request_shape(http, fake_time):
    token_ok(http)
    http.add(responses.POST, INGEST, json={"requestId": "r-1"})
    member = Member(member_id="u1", email=" Jane.Doe@GoogleMail.com ", phone="+1 (800) 555-0100",
                    first_name=" Jane ", last_name="Doe", country="us", zip="94043")
    [result] = connector(fake_time, consent_ad_user_data="CONSENT_GRANTED",
                         login_account_id="999").add("7090123456", [member])
    assert result.status == "sent" and result.provider_id == "r-1"
    request = http.calls[1].request
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    body = json.loads(request.body)
    assert body["destinations"] == [{
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
        "productDestinationId": "7090123456",
        "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "999"}}]
    assert body["encoding"] == "HEX"
    assert body["termsOfService"] == {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
    assert body["consent"] == {"adUserData": "CONSENT_GRANTED"}
    ids = body["audienceMembers"][0]["userData"]["userIdentifiers"]
    assert ids[0] == {"emailAddress": sha256_hex("janedoe@googlemail.com")}
    assert ids[1] == {"phoneNumber": sha256_hex("+18005550100")}
    assert ids[2] == {"address": {"givenName": sha256_hex("jane"), "familyName": sha256_hex("doe"),
                                  "regionCode": "US", "postalCode": "94043"}}


def test_remove_posts_to_remove(http, fake_time):
    token_ok(http)
    http.add(responses.POST, REMOVE, json={"requestId": "r-2"})
    [result] = connector(fake_time).remove("7090123456", [Member(member_id="u1", email="a@b.com")])
    body = json.loads(http.calls[1].request.body)
    assert result.status == "sent" and "termsOfService" not in body


def test_violation_naming_a_member_fails_only_that_member(http, fake_time):
    token_ok(http)
    http.add(rpc_error(400, "INVALID_ARGUMENT", "There was a problem with the request.", [
        {"field": "audience_members.audience_members[1]", "reason": "INVALID_SHA256_FORMAT"}]))
    http.add(responses.POST, INGEST, json={"requestId": "r-3"})
    members = [Member(member_id=f"u{i}", email=f"u{i}@example.com") for i in range(3)]
    results = connector(fake_time).add("7090123456", members)
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert "INVALID_SHA256_FORMAT" in results[1].reason and not results[1].retryable
    assert len(json.loads(http.calls[2].request.body)["audienceMembers"]) == 2


def test_expired_token_is_refreshed_once(http, fake_time):
    token_ok(http)
    http.add(rpc_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."))
    token_ok(http, "ya29.c.fresh")
    http.add(responses.POST, INGEST, json={"requestId": "r-4"})
    [result] = connector(fake_time).add("7090123456", [Member(member_id="u1", email="a@b.com")])
    assert result.status == "sent"
    assert http.calls[3].request.headers["Authorization"] == "Bearer ya29.c.fresh"


def test_mobile_ids_when_no_contact_info(http, fake_time):
    token_ok(http)
    http.add(responses.POST, INGEST, json={"requestId": "r-5"})
    connector(fake_time).add("7090123456", [Member(member_id="u1", madid="AECE52E7-03EE-455A")])
    body = json.loads(http.calls[1].request.body)
    assert body["audienceMembers"] == [{"mobileData": {"mobileIds": ["AECE52E7-03EE-455A"]}}]


def test_one_data_type_per_request_so_an_app_only_user_fails_alone(http, fake_time):
    """Data Manager refuses a whole request that mixes `userData` and `mobileData` members
    (ErrorReason MULTIPLE_DATA_TYPES_NOT_ALLOWED,
    https://developers.google.com/data-manager/api/reference/rest/v1/ErrorReason): contact members
    and app-only members go in separate ingest requests, and a refusal of one leaves the other."""
    token_ok(http)
    http.add(responses.POST, INGEST, json={"requestId": "r-users"})
    http.add(rpc_error(400, "INVALID_ARGUMENT", "There was a problem with the request.", [
        {"field": "audience_members.audience_members[0].mobile_data.mobile_ids",
         "description": "Mobile id is not valid.", "reason": "INVALID_MOBILE_ID_FORMAT"}]))
    members = [Member(member_id="u0", email="a@example.com"), Member(member_id="app", madid="not-an-id"),
               Member(member_id="u2", phone="+18005550100")]
    results = connector(fake_time).add("7090123456", members)
    bodies = [json.loads(c.request.body) for c in http.calls if c.request.url == INGEST]
    assert [{next(iter(m)) for m in b["audienceMembers"]} for b in bodies] == [{"userData"}, {"mobileData"}]
    assert len(bodies[0]["audienceMembers"]) == 2
    assert [(r.key, r.status) for r in results] == [("u0", "sent"), ("app", "failed"), ("u2", "sent")]
    assert not results[1].retryable
