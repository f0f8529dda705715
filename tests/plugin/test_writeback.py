"""Score write-back to the host: only changed values, category-change events, retries of failures."""
from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import delete, select

from plugin.campaigns import jobs
from plugin.campaigns.writeback import EVENT, attribute_names
from plugin.store import transaction
from plugin.store.tables import score_writebacks, scores
from tests.plugin import campaign_data as cd

TRACK = "https://rest.iad-01.braze.com/users/track"
BRAZE = {"enabled": True, "rest_endpoint": "https://rest.iad-01.braze.com", "api_key": "braze-rest-key-123",
         "max_attempts": 1}


@pytest.fixture
def world(engine):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"braze": BRAZE})
    pid = cd.add_prediction(engine, ws, name="Purchase in 7 days")
    ids = cd.add_users(engine, ws, [(f"u{i}", {}) for i in range(4)])
    cd.add_scores(engine, ws, pid, {ids["u0"]: 10.2, ids["u1"]: 49.6, ids["u2"]: 80.0, ids["u3"]: 2.5})
    return {"ws": ws, "pid": pid, "ids": ids}


def rescore(engine, world, new: dict[str, float]):
    with transaction(engine) as conn:
        conn.execute(delete(scores).where(scores.c.prediction_id == world["pid"]))
    cd.add_scores(engine, world["ws"], world["pid"], {world["ids"][k]: v for k, v in new.items()})


def tracked(rsps) -> tuple[dict, list]:
    attributes, events = {}, []
    for call in rsps.calls:
        body = json.loads(call.request.body)
        attributes.update({a["external_id"]: {k: v for k, v in a.items() if k != "external_id"}
                           for a in body.get("attributes", [])})
        events += body.get("events", [])
    return attributes, events


def ok(rsps, errors=None):
    rsps.add(responses.POST, TRACK, status=201, json={"message": "success", **({"errors": errors} if errors else {})})


def test_attribute_names_come_from_the_prediction():
    assert attribute_names("Purchase in 7 days") == ("likely_purchase_in_7_days_score",
                                                     "likely_purchase_in_7_days_category")


def test_the_first_write_back_sends_every_score_and_category(engine, world):
    with responses.RequestsMock() as rsps:
        ok(rsps)
        counts = jobs.write_back_scores(engine)
        attributes, events = tracked(rsps)
    assert counts["attributes"] == 4 and counts["events"] == 0 and counts["predictions"] == 1
    score, category = attribute_names("Purchase in 7 days")
    assert attributes == {"u0": {score: 10, category: "Low"}, "u1": {score: 50, category: "Low"},
                          "u2": {score: 80, category: "High"}, "u3": {score: 3, category: "Low"}}
    assert events == []


def test_only_changes_are_sent_and_a_new_category_is_an_event(engine, world):
    with responses.RequestsMock() as rsps:
        ok(rsps)
        jobs.write_back_scores(engine)
    rescore(engine, world, {"u0": 10.4, "u1": 60.0, "u2": 78.0, "u3": 2.5})
    with responses.RequestsMock() as rsps:
        ok(rsps)
        counts = jobs.write_back_scores(engine)
        attributes, events = tracked(rsps)
    score, category = attribute_names("Purchase in 7 days")
    # u0 moved 0.2 (same whole score) and u3 did not move: nothing sent for them.
    assert attributes == {"u1": {score: 60, category: "Medium"}, "u2": {score: 78}}
    assert [(e["external_id"], e["name"], e["properties"]) for e in events] == [
        ("u1", EVENT, {"prediction": "Purchase in 7 days", "old": "Low", "new": "Medium", "score": 60})]
    assert counts["attributes"] == 2 and counts["events"] == 1
    with responses.RequestsMock() as rsps:  # nothing changed since: no request at all
        assert jobs.write_back_scores(engine)["attributes"] == 0


def test_what_the_host_refused_is_sent_again_next_time(engine, world):
    with responses.RequestsMock() as rsps:
        ok(rsps, errors=[{"type": "'external_id' is required", "input_array": "attributes", "index": 1}])
        counts = jobs.write_back_scores(engine)
    assert counts["failed"] == 1 and counts["attributes"] == 3
    with engine.connect() as conn:
        remembered = set(conn.execute(select(score_writebacks.c.user_id)).scalars())
    assert remembered == {world["ids"][u] for u in ("u0", "u2", "u3")}
    with responses.RequestsMock() as rsps:
        ok(rsps)
        jobs.write_back_scores(engine)
        attributes, _ = tracked(rsps)
    assert list(attributes) == ["u1"]


def test_only_active_predictions_are_written_and_a_missing_host_is_counted(engine, world):
    demo = cd.add_prediction(engine, world["ws"], name="demo", status="demo")
    cd.add_scores(engine, world["ws"], demo, {world["ids"]["u0"]: 90.0})
    with responses.RequestsMock() as rsps:
        ok(rsps)
        assert jobs.write_back_scores(engine)["predictions"] == 1
        attributes, _ = tracked(rsps)
    assert not any(k.startswith("likely_demo") for a in attributes.values() for k in a)
    cd.set_settings(engine, world["ws"], connectors={"braze": {**BRAZE, "enabled": False}})
    assert jobs.write_back_scores(engine)["no_host_connector"] == 1


def test_clevertap_is_a_host_too(engine, world):
    cd.set_settings(engine, world["ws"], connectors={"clevertap": {
        "enabled": True, "account_id": "ACC-123", "passcode": "clevertap-passcode-1", "max_attempts": 1}})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://api.clevertap.com/1/upload",
                 json={"status": "success", "processed": 4, "unprocessed": []})
        assert jobs.write_back_scores(engine)["attributes"] == 4
        records = json.loads(rsps.calls[0].request.body)["d"]
    assert {r["identity"] for r in records} == {"u0", "u1", "u2", "u3"}
    assert records[0]["type"] == "profile" and "likely_purchase_in_7_days_score" in records[0]["profileData"]
