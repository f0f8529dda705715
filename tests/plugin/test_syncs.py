"""Segment syncs by difference: adds and removes since the last push, modes, retries, the log."""
from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import delete, select

from plugin import workspaces
from plugin.audiences.compiler import parse_definition
from plugin.audiences.segments import create_segment, delete_segment, refresh_segment
from plugin.campaigns import jobs, syncs
from plugin.store import transaction
from plugin.store.tables import destination_members, scores
from tests.connectors.google_keys import service_account_json, token_ok
from tests.helpers import bearer
from tests.plugin import campaign_data as cd

META = "https://graph.facebook.com/v25.0/6001/users"
INGEST = "https://datamanager.googleapis.com/v1/audienceMembers:ingest"
REST = "https://rest.iad-01.braze.com"
NOW = 1_790_000_000
B_KEY = "workspace-b-key-0123456789"


@pytest.fixture
def world(engine):
    """u0..u9 scored 0, 10, …, 90; the segment is score >= 50 (u5..u9)."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={
        "meta_custom_audience": {"enabled": True, "access_token": "EAAB-meta-token-123456", "max_attempts": 1},
        "google_customer_match": {"enabled": True, "service_account_json": service_account_json(),
                                  "operating_account_id": "1234567890", "max_attempts": 2},
        "braze": {"enabled": True, "rest_endpoint": REST, "api_key": "braze-key-123456", "partner_api_key":
                  "partner-key-123456", "client_secret": "client-secret-123456", "max_attempts": 1}})
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com"}) for i in range(10)])
    cd.add_scores(engine, ws, pid, {ids[f"u{i}"]: i * 10.0 for i in range(10)})
    node = parse_definition({"filter": "event_likelihood_score", "prediction": pid, "gte": 50})
    with transaction(engine) as conn:
        segment = create_segment(conn, ws, "likely buyers", node, NOW)
    return {"ws": ws, "pid": pid, "ids": ids, "segment": segment.id}


def rescore_and_refresh(engine, world, new: dict[int, float]):
    with transaction(engine) as conn:
        conn.execute(delete(scores).where(scores.c.prediction_id == world["pid"]))
    cd.add_scores(engine, world["ws"], world["pid"], {world["ids"][f"u{i}"]: s for i, s in new.items()})
    with transaction(engine) as conn:
        refresh_segment(conn, world["ws"], world["segment"], NOW + 60)


def pushed(engine, destination_id) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(destination_members.c.user_id)
                                .where(destination_members.c.destination_id == destination_id)).scalars())


def meta_ok(rsps, method, n):
    rsps.add(method, META, json={"audience_id": "6001", "session_id": 9, "num_received": n, "num_invalid_entries": 0})


def ids_of(world, *indexes) -> set[int]:
    return {world["ids"][f"u{i}"] for i in indexes}


def test_attach_a_destination_over_the_api(client, world, engine):
    path = f"/v1/segments/{world['segment']}/destinations"
    made = client.post(path, json={"connector": "meta_custom_audience", "audience_id": "6001"}, headers=bearer())
    assert made.status_code == 201 and made.json["mode"] == "mirror" and made.json["last_synced_at"] is None
    again = client.post(path, json={"connector": "meta_custom_audience", "audience_id": "6001"}, headers=bearer())
    assert again.status_code == 409
    bad = client.post(path, json={"connector": "sendgrid", "audience_id": "x"}, headers=bearer())
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_connector"
    assert client.post(path, json={"connector": "braze", "audience_id": "c", "mode": "sometimes"},
                       headers=bearer()).status_code == 400
    assert client.get(path, headers=bearer()).json["destinations"][0]["audience_id"] == "6001"
    workspaces.add_api_key(engine, workspaces.ensure(engine, "b"), B_KEY)
    assert client.get(path, headers=bearer(B_KEY)).status_code == 404
    assert client.post(f"/v1/segments/{world['segment']}/sync", headers=bearer(B_KEY)).status_code == 404


def test_a_mirror_sync_sends_only_adds_and_removes_since_the_last_sync(engine, world):
    dest = syncs.attach(engine, world["ws"], world["segment"], "meta_custom_audience", "6001")
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.POST, 5)
        first = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        assert len(json.loads(rsps.calls[0].request.body)["payload"]["data"]) == 5
    assert (first["status"], first["added"], first["removed"], first["segment_version"]) == ("ok", 5, 0, 1)
    assert pushed(engine, dest["id"]) == ids_of(world, 5, 6, 7, 8, 9)
    rescore_and_refresh(engine, world, {i: (95.0 if i in (1, 2) else 10.0 if i in (5, 6) else i * 10.0)
                                        for i in range(10)})
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.POST, 2)
        meta_ok(rsps, responses.DELETE, 2)
        second = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        sizes = {c.request.method: len(json.loads(c.request.body)["payload"]["data"]) for c in rsps.calls}
    assert sizes == {"POST": 2, "DELETE": 2}
    assert (second["added"], second["removed"], second["segment_version"]) == (2, 2, 2)
    assert pushed(engine, dest["id"]) == ids_of(world, 1, 2, 7, 8, 9)
    with responses.RequestsMock():  # nothing changed: no call at all
        third = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
    assert (third["status"], third["added"], third["removed"]) == ("ok", 0, 0)


def test_an_additive_destination_never_removes(engine, world):
    dest = syncs.attach(engine, world["ws"], world["segment"], "meta_custom_audience", "6001", mode="additive")
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.POST, 5)
        syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
    rescore_and_refresh(engine, world, {i: 10.0 for i in range(9)} | {9: 99.0})
    with responses.RequestsMock():
        log = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
    assert (log["added"], log["removed"]) == (0, 0)
    assert pushed(engine, dest["id"]) == ids_of(world, 5, 6, 7, 8, 9)


def test_members_the_provider_refused_are_retried_by_the_next_sync(engine, world):
    dest = syncs.attach(engine, world["ws"], world["segment"], "google_customer_match", "aud-42")
    violation = {"error": {"code": 400, "message": "Request contains an invalid argument.",
                           "status": "INVALID_ARGUMENT", "details": [{
                               "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                                   {"field": "audience_members.audience_members[1]", "reason": "INVALID_FORMAT"}]}]}}
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.add(responses.POST, INGEST, status=400, json=violation)
        rsps.add(responses.POST, INGEST, json={"requestId": "r-2"})
        first = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"],
                                       connector_options={"sleep": lambda s: None})
    assert (first["status"], first["added"], first["failed"]) == ("partial", 4, 1)
    assert "http_400" in first["error"]
    assert pushed(engine, dest["id"]) == ids_of(world, 5, 7, 8, 9)
    with responses.RequestsMock() as rsps:
        token_ok(rsps)
        rsps.add(responses.POST, INGEST, json={"requestId": "r-3"})
        second = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        members = json.loads(rsps.calls[1].request.body)["audienceMembers"]
    assert len(members) == 1 and (second["status"], second["added"]) == ("ok", 1)
    with engine.connect() as conn:
        log = syncs.sync_log(conn, world["ws"], world["segment"], dest["id"])
    assert [entry["status"] for entry in log] == ["ok", "partial"]


def test_braze_segment_membership_is_a_custom_array_attribute_by_default(engine, world):
    """Every Braze customer can write `/users/track`: membership is `{"add": [segment]}` on a
    custom array attribute (https://www.braze.com/docs/api/objects_filters/user_attributes_object/),
    which Braze's segment builder filters on; no cohort, no partner keys."""
    cd.set_settings(engine, world["ws"], connectors={"braze": {
        "enabled": True, "rest_endpoint": REST, "api_key": "braze-key-123456", "max_attempts": 1}})
    dest = syncs.attach(engine, world["ws"], world["segment"], "braze", "likely-buyers")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{REST}/users/track", status=201,
                 json={"message": "success", "attributes_processed": 5})
        log = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        calls = len(rsps.calls)
        body = json.loads(rsps.calls[0].request.body)
    assert log["added"] == 5 and calls == 1
    assert sorted(a["external_id"] for a in body["attributes"]) == [f"u{i}" for i in range(5, 10)]
    assert all(a["likely_segments"] == {"add": ["likely-buyers"]} for a in body["attributes"])


def test_a_host_cohort_destination_through_braze_for_partners(engine, world):
    settings = {"enabled": True, "rest_endpoint": REST, "api_key": "braze-key-123456", "max_attempts": 1,
                "segment_membership": "cohort", "partner_api_key": "partner-key-123456",
                "client_secret": "client-secret-123456"}
    cd.set_settings(engine, world["ws"], connectors={"braze": settings})
    dest = syncs.attach(engine, world["ws"], world["segment"], "braze", "likely-buyers")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{REST}/partners/likely/cohorts", status=201, json={"message": "success"})
        rsps.add(responses.POST, f"{REST}/partners/likely/cohorts/users", status=201, json={"message": "success"})
        log = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        change = json.loads(rsps.calls[1].request.body)["cohort_changes"][0]
    assert log["added"] == 5 and sorted(change["user_ids"]) == [f"u{i}" for i in range(5, 10)]


def test_the_job_syncs_every_destination_and_logs_a_deleted_segment(engine, world):
    dest = syncs.attach(engine, world["ws"], world["segment"], "meta_custom_audience", "6001")
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.POST, 5)
        assert jobs.sync_segments(engine) == {"destinations": 1, "ok": 1, "partial": 0, "failed": 0,
                                              "added": 5, "removed": 0}
    with transaction(engine) as conn:
        delete_segment(conn, world["ws"], world["segment"])
    log = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
    assert (log["status"], log["error"]) == ("failed", "segment_deleted")


def test_a_disabled_connector_fails_the_sync_with_a_clear_error(engine, world, client):
    dest = syncs.attach(engine, world["ws"], world["segment"], "clevertap", "likely_buyers")
    answer = client.post(f"/v1/segments/{world['segment']}/sync", headers=bearer())
    assert answer.status_code == 200
    (log,) = answer.json["syncs"]
    assert (log["status"], log["error"]) == ("failed", "connector_not_enabled: clevertap")
    history = client.get(f"/v1/segments/{world['segment']}/destinations/{dest['id']}/syncs", headers=bearer())
    assert history.json["syncs"][0]["id"] == log["id"]
