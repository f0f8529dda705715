"""Meta Custom Audiences on the Graph API, faked with Meta's real error bodies and codes."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests
import responses

from connectors.ads.meta import MetaCustomAudience
from connectors.hashing import sha256_hex
from connectors.model import Member

from .contract import ConnectorContract

GRAPH = "https://graph.facebook.com/v25.0"
USERS = f"{GRAPH}/23851234567890123/users"
TOKEN = "EAAGm0PX4ZCpsBAfakeSystemUserToken"
APP_SECRET = "meta-app-secret-93ab"


def graph_error(status, code, message, subcode=None, headers=None, method=responses.POST, **extra):
    body = {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_subcode": subcode, "fbtrace_id": "AbCdEfGhIjK", **extra}}
    return responses.Response(method, USERS, status=status, json=body, headers=headers or {})


def usage_header(minutes: float) -> dict:
    return {"X-Business-Use-Case-Usage": json.dumps({"act_1234567890": [{
        "type": "ads_management", "call_count": 100, "total_cputime": 30, "total_time": 28,
        "estimated_time_to_regain_access": minutes}]})}


def member(i: int, **changes) -> Member:
    fields = dict(member_id=f"user-{i}", email=f" User{i}@Example.com ", phone="+1 (650) 555-1212",
                  first_name="Mary", last_name="Smith-Jones", city="Menlo Park", state="California",
                  zip="94025-1234", country="US", madid="AECE52E7-03EE-455A-B3C4-E57283966239",
                  extern_id=f"crm-{i}")
    fields.update(changes)
    return Member(**fields)


class TestMetaContract(ConnectorContract):
    batch_limit = 10_000
    throttle_wait = 60.0  # Meta tells minutes (estimated_time_to_regain_access)
    secrets = (TOKEN, APP_SECRET)

    def make_connector(self, fake_time, **overrides):
        return MetaCustomAudience({"access_token": TOKEN, "app_secret": APP_SECRET, **overrides},
                                  **fake_time.kwargs())

    def make_items(self, n):
        return [Member(member_id=f"user-{i}", email=f"user{i}@example.com") for i in range(n)]

    def deliver(self, connector, items):
        return connector.add("23851234567890123", items)

    def arrange_ok(self, transport):
        def reply(request):
            rows = json.loads(request.body)["payload"]["data"]
            return 200, {}, json.dumps({"audience_id": "23851234567890123",
                                        "session_id": "9778993", "num_received": len(rows),
                                        "num_invalid_entries": 0, "invalid_entry_samples": {}})
        transport.add_callback(responses.POST, USERS, callback=reply)

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        if kind == "timeout":
            transport.add(responses.POST, USERS, body=requests.ConnectTimeout("connect timed out"))
        elif kind == "read_timeout":
            transport.add(responses.POST, USERS, body=requests.ConnectionError("reset by peer"))
        elif kind == "ambiguous":
            pytest.skip("Graph errors are classified by their code, not the HTTP status")
        elif kind == "server":
            transport.add(graph_error(500, 2, message, is_transient=True))
        elif kind == "throttle":
            transport.add(graph_error(400, 17, f"User request limit reached {message}", 2446079,
                                      headers=usage_header(retry_after / 60)))
        elif kind == "bad_request":
            transport.add(graph_error(400, 100, f"Invalid parameter {message}", 1870053))
        elif kind == "unauthorized":
            transport.add(graph_error(400, 190, f"Error validating access token: {message}", 463))

    def arrange_check(self, transport, ok):
        if ok:
            transport.add(responses.GET, f"{GRAPH}/me", json={"id": "1234567890", "name": "likely"})
        else:
            transport.add(responses.GET, f"{GRAPH}/me", status=400, json={"error": {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException", "code": 190, "fbtrace_id": "Xyz"}})

    def items_per_call(self, transport):
        return [len(json.loads(c.request.body)["payload"]["data"]) for c in transport.calls]


def connector(fake_time, **overrides):
    return TestMetaContract().make_connector(fake_time, **overrides)


def ok(rsps, method=responses.POST):
    rsps.add(method, USERS, json={"audience_id": "23851234567890123", "session_id": "1",
                                  "num_received": 1, "num_invalid_entries": 0})


def test_rows_are_normalised_and_hashed_per_key(http, fake_time):
    ok(http)
    [result] = connector(fake_time).add("23851234567890123", [member(1)])
    assert result.status == "sent"
    payload = json.loads(http.calls[0].request.body)["payload"]
    assert payload["schema"] == ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY",
                                 "MADID", "EXTERN_ID"]
    row = dict(zip(payload["schema"], payload["data"][0]))
    assert row["EMAIL"] == sha256_hex("user1@example.com")
    assert row["PHONE"] == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    assert row["FN"] == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    assert row["LN"] == sha256_hex("smithjones")
    assert row["CT"] == sha256_hex("menlopark")
    assert row["ST"] == sha256_hex("ca")
    assert row["ZIP"] == sha256_hex("94025")
    assert row["COUNTRY"] == sha256_hex("us")
    assert row["MADID"] == "aece52e7-03ee-455a-b3c4-e57283966239"  # not hashed
    assert row["EXTERN_ID"] == "crm-1"  # not hashed


def test_session_spans_batches_with_sequence_and_last_flag(http, fake_time):
    ok(http)
    ok(http)
    members = [Member(member_id=f"u{i}", email=f"u{i}@example.com") for i in range(10_001)]
    connector(fake_time).add("23851234567890123", members)
    first, second = (json.loads(c.request.body)["session"] for c in http.calls)
    assert first["session_id"] == second["session_id"]
    assert (first["batch_seq"], first["last_batch_flag"]) == (1, False)
    assert (second["batch_seq"], second["last_batch_flag"]) == (2, True)
    assert first["estimated_num_total"] == second["estimated_num_total"] == 10_001


def test_remove_uses_delete(http, fake_time):
    ok(http, responses.DELETE)
    [result] = connector(fake_time).remove("23851234567890123", [member(1)])
    assert result.status == "sent" and http.calls[0].request.method == "DELETE"


def test_token_travels_in_header_with_appsecret_proof(http, fake_time):
    ok(http)
    connector(fake_time).add("23851234567890123", [member(1)])
    request = http.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.url
    proof = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert f"appsecret_proof={proof}" in request.url


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80003])
def test_throttling_codes_are_backed_off(http, fake_time, code):
    http.add(graph_error(400, code, "(#%d) rate limited" % code, headers=usage_header(0.5)))
    ok(http)
    [result] = connector(fake_time).add("23851234567890123", [member(1)])
    assert result.status == "sent" and result.attempts == 2
    assert fake_time.sleeps[0] >= 30


def test_invalid_token_190_is_a_configuration_error(http, fake_time):
    http.add(graph_error(400, 190, "Error validating access token: Session has expired", 463))
    [result] = connector(fake_time).add("23851234567890123", [member(1)])
    assert result.configuration_error and "graph_190" in result.reason


def test_member_without_identifiers_is_skipped(http, fake_time):
    ok(http)
    results = connector(fake_time).add("23851234567890123", [Member(member_id="nobody"), member(2)])
    assert results[0].status == "skipped" and results[0].reason == "no_identifiers"
    assert len(json.loads(http.calls[0].request.body)["payload"]["data"]) == 1


def test_gender_and_date_of_birth_travel_as_gen_doby_dobm_dobd(http, fake_time):
    """Meta's multi-key schema takes GEN, DOBY, DOBM and DOBD, normalised and SHA-256-hashed
    (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences)."""
    ok(http)
    people = [Member(member_id="a", email="a@example.com", gender="female", date_of_birth="1990-07-04"),
              Member(member_id="b", email="b@example.com")]
    connector(fake_time).add("23851234567890123", people)
    payload = json.loads(http.calls[0].request.body)["payload"]
    assert payload["schema"] == ["EMAIL", "GEN", "DOBY", "DOBM", "DOBD"]
    first, second = (dict(zip(payload["schema"], row)) for row in payload["data"])
    assert (first["GEN"], first["DOBY"], first["DOBM"], first["DOBD"]) == (
        sha256_hex("f"), sha256_hex("1990"), sha256_hex("07"), sha256_hex("04"))
    assert second["GEN"] == second["DOBY"] == ""  # a member without them leaves them empty
