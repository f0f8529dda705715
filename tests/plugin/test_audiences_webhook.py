"""POST /webhooks/audiences: the host's audience builder keeps one segment per host audience."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugin import workspaces
from plugin.store.tables import segments
from tests.helpers import OTHER_SECRET, bearer, post_signed
from tests.plugin.audience_data import add_prediction, add_users, default_id, set_scores


@pytest.fixture
def world(engine):
    ws = default_id(engine)
    ids = add_users(engine, ws, {f"u{i}": {"country": "US" if i % 2 else "FR"} for i in range(10)})
    pid, _ = add_prediction(engine, ws, "purchase-14d")
    set_scores(engine, ws, pid, {ids[f"u{i}"]: i * 10.0 for i in range(10)})
    return {"ws": ws, "pid": pid}


def audience(world, low=50, audience_id="aud-1", name="Likely buyers"):
    return {"audience_id": audience_id, "name": name,
            "definition": {"filter": "event_likelihood_score", "prediction": world["pid"], "gte": low}}


def segment_count(engine, **where):
    with engine.connect() as conn:
        query = select(func.count()).select_from(segments)
        for column, value in where.items():
            query = query.where(segments.c[column] == value)
        return conn.execute(query).scalar()


def test_creates_then_replays_then_updates(client, world, engine):
    first = post_signed(client, "/webhooks/audiences", audience(world), webhook_id="msg_1")
    assert first.status_code == 200, first.json
    body = first.json
    assert body | {"segment_id": None} == {"segment_id": None, "audience_id": "aud-1", "size": 5, "version": 1,
                                           "outcome": "created", "duplicate": False}
    # The same delivery again: the first answer, nothing written.
    again = post_signed(client, "/webhooks/audiences", audience(world), webhook_id="msg_1")
    assert again.json == {**body, "duplicate": True}
    # The same audience under a new webhook-id: the same segment, no new snapshot.
    same = post_signed(client, "/webhooks/audiences", audience(world), webhook_id="msg_2").json
    assert (same["segment_id"], same["version"], same["outcome"]) == (body["segment_id"], 1, "unchanged")
    renamed = post_signed(client, "/webhooks/audiences", audience(world, name="Buyers"), webhook_id="msg_3").json
    assert (renamed["outcome"], renamed["version"]) == ("renamed", 1)
    changed = post_signed(client, "/webhooks/audiences", audience(world, low=80, name="Buyers"),
                          webhook_id="msg_4").json
    assert (changed["segment_id"], changed["version"], changed["size"], changed["outcome"]) == (
        body["segment_id"], 2, 2, "updated")
    assert segment_count(engine) == 1
    shown = client.get(f"/v1/segments/{body['segment_id']}", headers=bearer()).json
    assert shown["host_audience_id"] == "aud-1" and shown["name"] == "Buyers"
    assert shown["definition"]["gte"] == 80


def test_each_host_audience_id_has_its_own_segment(client, world, engine):
    a = post_signed(client, "/webhooks/audiences", audience(world, audience_id="a")).json
    b = post_signed(client, "/webhooks/audiences", {**audience(world), "audience_id": 42}).json
    assert a["segment_id"] != b["segment_id"] and b["audience_id"] == "42"
    assert segment_count(engine) == 2


def test_per_workspace_path(client, world, engine):
    acme = workspaces.ensure(engine, "acme")
    workspaces.add_webhook_secret(engine, acme, OTHER_SECRET)
    acme_pid, _ = add_prediction(engine, acme.id, "acme-prediction")
    response = post_signed(client, "/webhooks/acme/audiences",
                           {"audience_id": "aud-1", "name": "x", "definition": {
                               "filter": "event_likelihood_score", "prediction": acme_pid, "gte": 1}},
                           secret=OTHER_SECRET)
    assert response.status_code == 200 and response.json["size"] == 0
    assert segment_count(engine, workspace_id=acme.id) == 1 and segment_count(engine, workspace_id=world["ws"]) == 0
    # acme cannot point at the default workspace's prediction.
    refused = post_signed(client, "/webhooks/acme/audiences", audience(world, audience_id="b"), secret=OTHER_SECRET)
    assert refused.status_code == 400 and refused.json["error"]["code"] == "unknown_prediction"


@pytest.mark.parametrize("status, http, code", [("demo", 403, "prediction_not_targetable"),
                                                ("preview", 403, "prediction_not_targetable"),
                                                ("archived", 409, "prediction_archived")])
def test_untargetable_predictions_are_refused_and_nothing_is_kept(client, world, engine, status, http, code):
    other, _ = add_prediction(engine, world["ws"], "other", status=status)
    body = {"audience_id": "aud-1", "name": "x", "definition": {"all": [
        {"filter": "reachable", "channel": "email"},
        {"filter": "event_likelihood_score", "prediction": other, "gte": 50}]}}
    refused = post_signed(client, "/webhooks/audiences", body, webhook_id="msg_x")
    assert refused.status_code == http and refused.json["error"]["code"] == code
    assert refused.json["error"]["details"]["name"] == "other"
    assert segment_count(engine) == 0
    # No receipt was kept, so the host can fix the audience and resend under the same id.
    fixed = post_signed(client, "/webhooks/audiences", audience(world), webhook_id="msg_x")
    assert fixed.status_code == 200 and fixed.json["outcome"] == "created"


def test_invalid_definition_names_the_path(client, world):
    body = {**audience(world), "definition": {"any": [{"filter": "reachable", "channel": "fax"}]}}
    response = post_signed(client, "/webhooks/audiences", body)
    assert response.status_code == 400
    assert response.json["error"]["details"] == {"definition": {"any[0].channel": ["must be one of: email, push, in_app, ads"]}}
    assert post_signed(client, "/webhooks/audiences", {"name": "x"}).status_code == 400


def test_unsigned_requests_are_refused(client, world):
    response = client.post("/webhooks/audiences", json=audience(world))
    assert response.status_code == 401


def test_concurrent_deliveries_of_a_new_audience_make_one_segment(app, world, engine):
    import threading
    results, barrier = [], threading.Barrier(4)

    def deliver(n):
        client = app.test_client()
        barrier.wait()
        results.append(post_signed(client, "/webhooks/audiences", audience(world), webhook_id=f"msg_race_{n}"))
    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 4
    assert sorted(r.json["outcome"] for r in results) == ["created", "unchanged", "unchanged", "unchanged"]
    assert len({r.json["segment_id"] for r in results}) == 1 and segment_count(engine) == 1
