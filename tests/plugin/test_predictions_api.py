"""/v1/predictions over HTTP, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from plugin import create_app, workspaces
from tests.helpers import API_KEY, bearer
from tests.plugin.predictions_fixtures import AS_OF, SCORED, seed_goal_event

OTHER_KEY = "other-workspace-key-0123456789"
VALID = {"name": "Buyers", "goal_event": "purchase", "goal_condition": {"property": "value", "op": "gt", "value": 20},
         "window_days": 14}


@pytest.fixture(autouse=True)
def _goal_seen(request):
    """The empty stores these tests start from have seen a purchase: its goal is a known event
    (tests marked `own_data` write their own history instead)."""
    if "database_url" in request.fixturenames and not request.node.get_closest_marker("own_data"):
        seed_goal_event(request.getfixturevalue("database_url"))


def post(client, path, body=None, key=API_KEY):
    return client.post(path, json=body, headers=bearer(key)) if body is not None else \
        client.post(path, headers=bearer(key))


def test_create_read_list_change_and_archive(client):
    created = post(client, "/v1/predictions", VALID)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["goal_condition"] == VALID["goal_condition"] and body["status"] == "active"
    assert body["categories"]["bins"][1] == {"name": "Medium", "min": 50.0}
    assert body["schedule"] == "daily" and body["retrain_days"] == 15 and body["audience"] is None
    assert body["model"] is None and body["latest_run"] is None
    pid = body["id"]
    assert client.get(f"/v1/predictions/{pid}", headers=bearer()).json["name"] == "Buyers"
    assert [p["id"] for p in client.get("/v1/predictions", headers=bearer()).json["predictions"]] == [pid]

    changed = client.patch(f"/v1/predictions/{pid}", headers=bearer(),
                           json={"name": "Big buyers", "schedule": "weekly", "retrain_days": 30,
                                 "categories": {"type": "quantile", "bins": [{"name": "Rest", "share": 0.9},
                                                                             {"name": "Top", "share": 0.1}]}})
    assert changed.status_code == 200, changed.json
    assert changed.json["name"] == "Big buyers" and changed.json["schedule"] == "weekly"

    archived = post(client, f"/v1/predictions/{pid}/archive")
    assert archived.status_code == 200 and archived.json["status"] == "archived"
    assert post(client, f"/v1/predictions/{pid}/archive").json["status"] == "archived"  # idempotent
    assert client.get("/v1/predictions?status=archived", headers=bearer()).json["predictions"][0]["id"] == pid
    assert client.get("/v1/predictions?status=active", headers=bearer()).json["predictions"] == []
    for response in (client.patch(f"/v1/predictions/{pid}", headers=bearer(), json={"name": "x"}),
                     post(client, f"/v1/predictions/{pid}/train"), post(client, f"/v1/predictions/{pid}/score")):
        assert response.status_code == 409 and response.json["error"]["code"] == "prediction_archived"


@pytest.mark.parametrize("change, field", [
    ({"window_days": 0}, "window_days"), ({"window_days": 61}, "window_days"), ({"window_days": "7"}, "window_days"),
    ({"name": ""}, "name"), ({"goal_event": None}, "goal_event"),
    ({"goal_condition": {"property": "value", "op": "gt", "value": "20"}}, "goal_condition"),
    ({"goal_condition": {"property": "value", "op": "like", "value": 1}}, "goal_condition"),
    ({"goal_condition": {"property": "bad name!", "op": "eq", "value": 1}}, "goal_condition"),
    ({"goal_condition": {"property": "sku", "op": "in", "value": []}}, "goal_condition"),
    ({"categories": {"type": "fixed", "bins": [{"name": "A", "min": 5}]}}, "categories"),
    ({"schedule": "hourly"}, "schedule"), ({"retrain_days": 0}, "retrain_days"),
    ({"status": "archived"}, "status"), ({"audience": "everyone"}, "audience"), ({"colour": "red"}, "colour"),
])
def test_invalid_definitions_get_field_errors_and_nothing_is_written(client, change, field):
    response = post(client, "/v1/predictions", {**VALID, **change})
    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_failed" and field in response.json["error"]["details"]
    assert client.get("/v1/predictions", headers=bearer()).json["predictions"] == []


def test_goal_and_window_cannot_be_patched(client):
    pid = post(client, "/v1/predictions", VALID).json["id"]
    response = client.patch(f"/v1/predictions/{pid}", headers=bearer(), json={"window_days": 7, "goal_event": "x"})
    assert response.status_code == 400 and set(response.json["error"]["details"]) == {"window_days", "goal_event"}


def test_names_are_unique_per_workspace(client):
    assert post(client, "/v1/predictions", VALID).status_code == 201
    again = post(client, "/v1/predictions", VALID)
    assert again.status_code == 409 and again.json["error"]["code"] == "name_taken"


def test_active_predictions_are_limited_per_workspace(app_settings):
    client = create_app({**app_settings, "max_active_predictions": 2}).test_client()
    for name in ("a", "b"):
        assert post(client, "/v1/predictions", {**VALID, "name": name}).status_code == 201
    refused = post(client, "/v1/predictions", {**VALID, "name": "c"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "too_many_active_predictions"
    assert refused.json["error"]["details"] == {"active": 2, "limit": 2}
    # Preview and demo predictions do not count; activating one does.
    preview = post(client, "/v1/predictions", {**VALID, "name": "c", "status": "preview"})
    assert preview.status_code == 201
    pid = preview.json["id"]
    assert client.patch(f"/v1/predictions/{pid}", headers=bearer(), json={"status": "active"}).status_code == 409
    first = client.get("/v1/predictions", headers=bearer()).json["predictions"][0]["id"]
    post(client, f"/v1/predictions/{first}/archive")
    assert client.patch(f"/v1/predictions/{pid}", headers=bearer(), json={"status": "active"}).status_code == 200


def test_another_workspace_cannot_see_or_train_my_predictions(trained):
    other = workspaces.ensure(trained.engine, "acme")
    workspaces.add_api_key(trained.engine, other, OTHER_KEY)
    client = trained.client
    pid = trained.prediction().id
    assert client.get("/v1/predictions", headers=bearer(OTHER_KEY)).json["predictions"] == []
    for method, path in [("GET", ""), ("PATCH", ""), ("POST", "/archive"), ("POST", "/train"), ("POST", "/score"),
                         ("GET", "/users/demo-user-000001"), ("GET", "/backtests"), ("POST", "/backtests")]:
        response = client.open(f"/v1/predictions/{pid}{path}", method=method, headers=bearer(OTHER_KEY),
                               json={} if method != "GET" else None)
        assert response.status_code == 404, (method, path, response.json)
        assert response.json["error"]["code"] == "prediction_not_found"
    # Nothing changed for the owner.
    assert client.get(f"/v1/predictions/{pid}", headers=bearer()).json["status"] == "active"


def test_show_reports_the_models_quality_and_the_latest_run(trained):
    body = trained.client.get(f"/v1/predictions/{trained.prediction().id}", headers=bearer()).json
    metrics = body["model"]["metrics"]
    assert body["name"] == SCORED and body["model"]["version"] == 1
    assert {"auc", "log_loss", "brier", "calibration", "feature_importance", "prediction_quality", "quality_band",
            "test_users", "test_positives", "threshold_curve"} <= set(metrics)
    assert body["latest_run"]["users_scored"] > 0 and len(body["latest_run"]["histogram"]) == 100


def test_train_and_score_over_the_api(trained):
    pid = trained.prediction().id
    trained_again = post(trained.client, f"/v1/predictions/{pid}/train", {"as_of": AS_OF})
    assert trained_again.status_code == 201 and trained_again.json["version"] == 2
    scored = post(trained.client, f"/v1/predictions/{pid}/score", {"as_of": "2025-05-18"})
    assert scored.status_code == 200 and scored.json["model_version"] == 2 and scored.json["users_scored"] > 0
    bad = post(trained.client, f"/v1/predictions/{pid}/score", {"as_of": "soon"})
    assert bad.status_code == 400 and "as_of" in bad.json["error"]["details"]


def test_training_without_enough_data_answers_422_with_the_counts(client):
    pid = post(client, "/v1/predictions", VALID).json["id"]
    response = post(client, f"/v1/predictions/{pid}/train")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "not_enough_data"
    assert error["details"]["positives"] == 0 and error["details"]["negatives"] == 0
    assert error["details"]["min_positives"] == 100


def test_unknown_predictions_are_404(client):
    assert client.get("/v1/predictions/999", headers=bearer()).status_code == 404
    assert client.get("/v1/predictions", headers=bearer("nope-nope-nope-nope")).status_code == 401


def test_an_archived_prediction_is_restored_to_the_status_it_had(client):
    """Issue 16: archiving is not a one-way door."""
    active = post(client, "/v1/predictions", VALID).json
    demo = post(client, "/v1/predictions", {**VALID, "name": "Demo one", "status": "demo"}).json
    for made in (active, demo):
        assert post(client, f"/v1/predictions/{made['id']}/archive").json["status"] == "archived"
    restored = post(client, f"/v1/predictions/{active['id']}/unarchive")
    assert restored.status_code == 200 and restored.json["status"] == "active"
    assert post(client, f"/v1/predictions/{demo['id']}/unarchive").json["status"] == "demo"
    assert post(client, f"/v1/predictions/{active['id']}/unarchive").json["status"] == "active"  # idempotent
    assert post(client, "/v1/predictions/999999/unarchive").status_code == 404


def test_restoring_an_active_prediction_respects_the_active_limit(client):
    first = post(client, "/v1/predictions", VALID).json
    post(client, f"/v1/predictions/{first['id']}/archive")
    for i in range(5):
        assert post(client, "/v1/predictions", {**VALID, "name": f"Other {i}"}).status_code == 201
    refused = post(client, f"/v1/predictions/{first['id']}/unarchive")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "too_many_active_predictions"
    assert client.get(f"/v1/predictions/{first['id']}", headers=bearer()).json["status"] == "archived"


def _recent_shop(database_url):
    """Ten users active 20 days ago; 3 bought for more than 20 and 1 for 10 in the last 14 days; one
    newcomer (first seen 2 days ago, so not eligible at the cutoff) bought too."""
    import time as _time

    from plugin.store import make_engine
    from tests.plugin.predictions_fixtures import DAY, event, write
    now = int(_time.time())
    rows = [event(f"u{i}", "visit", now - 20 * DAY) for i in range(10)]
    rows += [event(f"u{i}", "purchase", now - 5 * DAY, value=30) for i in range(3)]
    rows += [event("u3", "purchase", now - 5 * DAY, value=10), event("newcomer", "purchase", now - 2 * DAY, value=50)]
    engine = make_engine(database_url)
    write(engine, rows, workspace_id=workspaces.ensure(engine, "default").id)
    engine.dispose()


def test_creation_reports_the_recent_window_and_warns_when_it_is_thin(client, database_url):
    """Issue 16 point 2: eligible users and past converters over the last `window_days`, before saving."""
    _recent_shop(database_url)
    checked = post(client, "/v1/predictions/check", VALID)
    assert checked.status_code == 200, checked.json
    figures = checked.json
    assert (figures["eligible_users"], figures["past_converters"], figures["non_converters"]) == (10, 3, 7)
    assert figures["enough"] is False and figures["min_positives"] == 100
    assert [w["code"] for w in figures["warnings"]] == ["not_enough_data"]
    assert client.get("/v1/predictions", headers=bearer()).json["predictions"] == []  # nothing saved
    unconditional = post(client, "/v1/predictions/check", {**VALID, "goal_condition": None}).json
    assert unconditional["past_converters"] == 4 and unconditional["eligible_users"] == 10

    created = post(client, "/v1/predictions", VALID)
    assert created.status_code == 201
    assert {k: created.json["data_check"][k] for k in ("eligible_users", "past_converters", "non_converters")} == {
        "eligible_users": 10, "past_converters": 3, "non_converters": 7}
    assert created.json["data_check"]["warnings"][0]["code"] == "not_enough_data"


def test_a_goal_event_never_seen_is_a_400_and_takes_no_slot(client):
    for path in ("/v1/predictions", "/v1/predictions/check"):
        refused = post(client, path, {**VALID, "goal_event": "purchace"})
        assert refused.status_code == 400, refused.json
        assert refused.json["error"]["code"] == "unknown_goal_event"
        assert "goal_event" in refused.json["error"]["details"]
        assert refused.json["error"]["details"]["known_events"] == ["purchase"]
    assert client.get("/v1/predictions", headers=bearer()).json["predictions"] == []


@pytest.mark.own_data
def test_an_audience_that_hides_past_converters_is_created_with_a_warning_that_counts_them(client, engine):
    from tests.plugin.predictions_fixtures import DAY, event, write
    end = 900_000_000  # 1998-07-09: old history is real history
    # 10 buyers in the last window: 6 came back after a long pause (seen 200 days before), 4 were recent.
    write(engine, [event(f"paused{i}", "purchase", end - 200 * DAY) for i in range(6)]
          + [event(f"recent{i}", "view", end - 20 * DAY) for i in range(4)]
          + [event(u, "purchase", end - DAY) for u in [f"paused{i}" for i in range(6)] + [f"recent{i}" for i in range(4)]])
    recent = {"filter": "performed", "event": "view", "within_days": 90}
    body = {"name": "Seen lately", "goal_event": "purchase", "window_days": 14, "audience": recent}
    created = post(client, "/v1/predictions", body)
    assert created.status_code == 201, created.json
    # (the data check may warn too, about the thin recent window: the creation answers both)
    [warning] = _coverage_warnings(created.json)
    assert warning["code"] == "audience_leaves_out_converters"
    assert (warning["details"]["converters"], warning["details"]["left_out"]) == (10, 6)
    assert "6 of the 10" in warning["message"]
    everyone = post(client, "/v1/predictions", {"name": "Everyone", "goal_event": "purchase", "window_days": 14})
    assert _coverage_warnings(everyone.json) == []
    widened = client.patch(f"/v1/predictions/{created.json['id']}", headers=bearer(),
                           json={"audience": {"any": [recent, {"filter": "performed", "event": "purchase"}]}})
    assert widened.status_code == 200 and _coverage_warnings(widened.json) == []


def _coverage_warnings(body: dict) -> list[dict]:
    return [w for w in body["warnings"] if w["code"] == "audience_leaves_out_converters"]


def test_a_churn_goal_is_created_from_a_goal_object_and_cannot_change(client, database_url):
    seed_goal_event(database_url, "session_start")
    body = {"name": "Lapsing", "goal": {"kind": "churn", "event": "session_start"}, "window_days": 30}
    created = post(client, "/v1/predictions", body)
    assert created.status_code == 201, created.json
    assert created.json["goal"] == {"kind": "churn", "event": "session_start"}
    assert created.json["goal_kind"] == "churn" and created.json["goal_event"] == "session_start"
    refused = client.patch(f"/v1/predictions/{created.json['id']}", headers=bearer(),
                           json={"goal": {"kind": "event", "event": "session_start"}})
    assert refused.status_code == 400 and "goal" in refused.json["error"]["details"]
    bad = post(client, "/v1/predictions", {**body, "name": "x", "goal": {"kind": "maybe", "event": "e"}})
    assert bad.status_code == 400
