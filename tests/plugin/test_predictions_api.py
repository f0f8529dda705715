"""/v1/predictions over HTTP, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from plugin import create_app, workspaces
from tests.helpers import API_KEY, bearer
from tests.plugin.predictions_fixtures import AS_OF, SCORED

OTHER_KEY = "other-workspace-key-0123456789"
VALID = {"name": "Buyers", "goal_event": "purchase", "goal_condition": {"property": "value", "op": "gt", "value": 20},
         "window_days": 14}


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
    [warning] = created.json["warnings"]
    assert warning["code"] == "audience_leaves_out_converters"
    assert (warning["details"]["converters"], warning["details"]["left_out"]) == (10, 6)
    assert "6 of the 10" in warning["message"]
    everyone = post(client, "/v1/predictions", {"name": "Everyone", "goal_event": "purchase", "window_days": 14})
    assert everyone.json["warnings"] == []
    widened = client.patch(f"/v1/predictions/{created.json['id']}", headers=bearer(),
                           json={"audience": {"any": [recent, {"filter": "performed", "event": "purchase"}]}})
    assert widened.status_code == 200 and widened.json["warnings"] == []


def test_a_churn_goal_is_created_from_a_goal_object_and_cannot_change(client):
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
