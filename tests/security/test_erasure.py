"""Erasure reaches every copy (issue 13, point 4), replayed against the real app.

The report: after a segment synced users to Meta, erasing one user deleted the only record of
what had been pushed, so the next sync sent no DELETE and the user stayed in the Meta audience
for good. Now erasure queues a removal from every destination the user was pushed to, before
it deletes the user's rows, and the destination's next sync sends it.

Provider shapes, faked with `responses`:
* Meta: `DELETE /{audience_id}/users` with the same hashed `payload` as an add, answered with
  `audience_id`, `session_id`, `num_received`, `num_invalid_entries`
  (https://developers.facebook.com/docs/marketing-api/custom-audience-api).
* Braze cohort import: `POST /partners/{partner}/cohorts/users` with `cohort_changes`
  `[{"user_ids": [...], "should_remove": true}]`
  (https://www.braze.com/docs/partners/isv_partners/cohort_import/).
* Google Data Manager: `POST /v1/audienceMembers:remove` answered with a `requestId`
  (https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/remove).
"""
from __future__ import annotations

import hashlib
import json

import pytest
import responses
from sqlalchemy import select

from plugin.audiences.compiler import parse_definition
from plugin.audiences.segments import create_segment
from plugin.campaigns import syncs
from plugin.store import transaction
from plugin.store.tables import destination_members, erasure_removals, users
from tests.connectors.google_keys import service_account_json, token_ok
from tests.helpers import bearer, post_signed
from tests.plugin import campaign_data as cd

NOW = 1_790_000_000
GRAPH = "https://graph.facebook.com/v25.0/6001/users"
BRAZE = "https://rest.iad-01.braze.com/partners/likely/cohorts"
GOOGLE_REMOVE = "https://datamanager.googleapis.com/v1/audienceMembers:remove"
GOOGLE_INGEST = "https://datamanager.googleapis.com/v1/audienceMembers:ingest"
CONNECTORS = {
    "meta_custom_audience": {"enabled": True, "access_token": "EAAB-meta-token-0123456789", "max_attempts": 1},
    "braze": {"enabled": True, "rest_endpoint": "https://rest.iad-01.braze.com", "api_key": "braze-key-0123456789",
              "partner_api_key": "partner-key-0123456789", "client_secret": "client-secret-0123456789",
              "segment_membership": "cohort", "max_attempts": 1},  # a partner's cohort import
    "google_customer_match": {"enabled": True, "service_account_json": service_account_json(),
                              "operating_account_id": "1234567890", "max_attempts": 1},
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def world(engine, client):
    """u0..u4 (scored 90, with e-mail addresses) in one segment, synced to Meta, Braze and Google."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors=CONNECTORS)
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"U{i}@Example.com ", "first_name": " Ada"})
                                    for i in range(5)])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    with transaction(engine) as conn:
        segment = create_segment(conn, ws, "buyers", parse_definition(
            {"filter": "event_likelihood_score", "prediction": pid, "gte": 50}), NOW).id
    audiences = {"meta_custom_audience": "6001", "braze": "cohort-1", "google_customer_match": "aud-42"}
    for connector, audience in audiences.items():
        made = client.post(f"/v1/segments/{segment}/destinations", headers=bearer(),
                           json={"connector": connector, "audience_id": audience})
        assert made.status_code == 201, made.json
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, GRAPH, json={"audience_id": "6001", "session_id": 1, "num_received": 5,
                                             "num_invalid_entries": 0})
        rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        rsps.add(responses.POST, f"{BRAZE}/users", json={"message": "success"}, status=201)
        token_ok(rsps)
        rsps.add(responses.POST, GOOGLE_INGEST, json={"requestId": "req-1"})
        logs = sync(client, segment)
    assert [(log["status"], log["added"]) for log in logs] == [("ok", 5)] * 3
    return {"ws": ws, "segment": segment, "ids": ids}


def sync(client, segment: int) -> list[dict]:
    answer = client.post(f"/v1/segments/{segment}/sync", headers=bearer())
    assert answer.status_code == 200, answer.json
    return answer.json["syncs"]


def erase(client, *user_ids: str) -> None:
    answer = post_signed(client, "/webhooks/default/users/delete", {"user_ids": list(user_ids)})
    assert answer.status_code == 200, answer.json
    assert answer.json["written"] == len(user_ids)


def test_an_erased_user_is_removed_from_every_destination_by_the_next_sync(client, engine, world):
    erase(client, "u2")
    with engine.connect() as conn:  # the user's rows are gone, the removals wait
        assert conn.execute(select(users.c.id).where(users.c.external_id == "u2")).first() is None
        assert world["ids"]["u2"] not in set(conn.execute(select(destination_members.c.user_id)).scalars())
        assert len(conn.execute(select(erasure_removals)).all()) == 3
    with responses.RequestsMock() as rsps:
        meta = rsps.add(responses.DELETE, GRAPH, json={"audience_id": "6001", "session_id": 2, "num_received": 1,
                                                      "num_invalid_entries": 0})
        braze = rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        cohort = rsps.add(responses.POST, f"{BRAZE}/users", json={"message": "success"}, status=201)
        token_ok(rsps)
        google = rsps.add(responses.POST, GOOGLE_REMOVE, json={"requestId": "req-2"})
        logs = sync(client, world["segment"])
        assert (meta.call_count, braze.call_count, cohort.call_count, google.call_count) == (1, 1, 1, 1)
        sent = {url: json.loads(call.request.body) for call in rsps.calls
                if (url := call.request.url.split("?")[0]) in (GRAPH, f"{BRAZE}/users", GOOGLE_REMOVE)}
    assert [(log["status"], log["added"], log["removed"]) for log in logs] == [("ok", 0, 1)] * 3
    # Meta got u2's normalised, hashed e-mail; Braze the host id; Google the hashed e-mail.
    assert sent[GRAPH]["payload"]["data"] == [[sha256("u2@example.com"), sha256("ada"), "u2"]]
    assert sent[GRAPH]["payload"]["schema"] == ["EMAIL", "FN", "EXTERN_ID"]
    assert sent[f"{BRAZE}/users"]["cohort_changes"] == [{"user_ids": ["u2"], "should_remove": True}]
    assert sent[GOOGLE_REMOVE]["audienceMembers"] == [
        {"userData": {"userIdentifiers": [{"emailAddress": sha256("u2@example.com")}]}}]
    with engine.connect() as conn:  # sent once, forgotten: nothing about u2 is left
        assert conn.execute(select(erasure_removals)).all() == []
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        assert [log["removed"] for log in sync(client, world["segment"])] == [0, 0, 0]


def test_a_removal_the_provider_refused_is_sent_again_by_the_following_sync(client, engine, world):
    erase(client, "u1", "u3")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.DELETE, GRAPH, status=503, json={"error": {
            "message": "Service temporarily unavailable", "type": "OAuthException", "code": 2,
            "is_transient": True, "fbtrace_id": "Ab1"}})
        rsps.add(responses.POST, BRAZE, status=500, json={"message": "Internal error"})
        token_ok(rsps)
        rsps.add(responses.POST, GOOGLE_REMOVE, status=503, json={"error": {
            "code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})
        logs = sync(client, world["segment"])
    assert [log["status"] for log in logs] == ["failed"] * 3
    with engine.connect() as conn:
        assert len(conn.execute(select(erasure_removals)).all()) == 6
    with responses.RequestsMock() as rsps:
        meta = rsps.add(responses.DELETE, GRAPH, json={"audience_id": "6001", "session_id": 3, "num_received": 2,
                                                      "num_invalid_entries": 0})
        rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        rsps.add(responses.POST, f"{BRAZE}/users", json={"message": "success"}, status=201)
        token_ok(rsps)
        rsps.add(responses.POST, GOOGLE_REMOVE, json={"requestId": "req-3"})
        logs = sync(client, world["segment"])
        assert len(json.loads(meta.calls[0].request.body)["payload"]["data"]) == 2
    assert [log["removed"] for log in logs] == [2, 2, 2]


def test_a_deleted_segment_still_sends_its_erasure_removals(client, engine, world):
    """Erasure is not a change of segment: the removal goes out even after the segment is gone."""
    destination = next(d for d in client.get(f"/v1/segments/{world['segment']}/destinations",
                                             headers=bearer()).json["destinations"]
                       if d["connector"] == "meta_custom_audience")
    for d in client.get(f"/v1/segments/{world['segment']}/destinations", headers=bearer()).json["destinations"]:
        if d["connector"] != "meta_custom_audience":
            client.delete(f"/v1/segments/{world['segment']}/destinations/{d['id']}", headers=bearer())
    erase(client, "u4")
    assert client.delete(f"/v1/segments/{world['segment']}", headers=bearer()).status_code == 204
    with responses.RequestsMock() as rsps:
        meta = rsps.add(responses.DELETE, GRAPH, json={"audience_id": "6001", "session_id": 4, "num_received": 1,
                                                      "num_invalid_entries": 0})
        log = syncs.sync_destination(engine, world["ws"], world["segment"], destination["id"])
        assert meta.call_count == 1
    assert (log["removed"], log["error"]) == (1, "segment_deleted")


def test_an_additive_destination_gets_the_removal_too(client, engine, world):
    """Additive destinations never remove members who merely left the segment; an erased user
    is removed all the same."""
    made = client.post(f"/v1/segments/{world['segment']}/destinations", headers=bearer(),
                       json={"connector": "meta_custom_audience", "audience_id": "7001", "mode": "additive"})
    assert made.status_code == 201, made.json
    additive = "https://graph.facebook.com/v25.0/7001/users"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, additive, json={"audience_id": "7001", "session_id": 5, "num_received": 5,
                                                 "num_invalid_entries": 0})
        rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        sync(client, world["segment"])
    erase(client, "u0")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, GRAPH, json={"audience_id": "6001", "session_id": 6, "num_received": 1,
                                               "num_invalid_entries": 0})
        removed = rsps.add(responses.DELETE, additive, json={"audience_id": "7001", "session_id": 7,
                                                             "num_received": 1, "num_invalid_entries": 0})
        rsps.add(responses.POST, BRAZE, json={"message": "success"}, status=201)
        rsps.add(responses.POST, f"{BRAZE}/users", json={"message": "success"}, status=201)
        token_ok(rsps)
        rsps.add(responses.POST, GOOGLE_REMOVE, json={"requestId": "req-4"})
        logs = sync(client, world["segment"])
        assert json.loads(removed.calls[0].request.body)["payload"]["data"][0][0] == sha256("u0@example.com")
    assert [log["removed"] for log in logs] == [1, 1, 1, 1]
