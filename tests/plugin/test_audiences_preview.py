"""POST /v1/audiences/preview: figures, sentence, sample, refusals and isolation."""
from __future__ import annotations

import json

import pytest

from plugin import workspaces
from plugin.audiences.preview import percent, summary
from tests.helpers import bearer, post_signed
from tests.plugin.audience_data import add_events, add_prediction, add_users, default_id, set_scores

B_KEY = "workspace-b-key-0123456789"


@pytest.fixture
def world(engine):
    ws = default_id(engine)
    ids = add_users(engine, ws, {"u1": {"country": "US"}, "u2": {"country": "FR"}, "u3": {"country": "US"},
                                 "u4": {}, "u5": {"country": "US"}, "u6": {}})
    pid, model = add_prediction(engine, ws, "purchase-14d")
    set_scores(engine, ws, pid, {ids["u1"]: 90.0, ids["u2"]: 60.0, ids["u3"]: 40.0, ids["u5"]: 75.0,
                                 ids["u6"]: 20.0})
    return {"ws": ws, "ids": ids, "pid": pid, "model": model}


def preview(client, definition, key=None, **extra):
    return client.post("/v1/audiences/preview", json={"definition": definition, **extra},
                       headers=bearer(key) if key else bearer())


def score(pid, **bounds):
    return {"filter": "event_likelihood_score", "prediction": pid, **bounds}


def test_score_range_figures(client, world):
    response = preview(client, score(world["pid"], gte=60, lte=100))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["size"] == 3
    assert body["eligible"] == {"basis": "scored_population", "prediction_id": world["pid"], "size": 5}
    assert body["share"] == 0.6
    [figures] = body["predictions"]
    assert figures["expected_conversions"] == 2.25                # (90 + 60 + 75) / 100
    assert figures["expected_conversions_total"] == 2.85
    assert figures["expected_share"] == round(2.25 / 2.85, 4)
    assert body["summary"] == ("Targets 3 users (60 % of the eligible audience); about 2 are expected to "
                               "purchase within 14 days, 79 % of all expected conversions.")
    # From the model's test set (tests/plugin/audience_data.curve): 400 test users at >= 60, 63 converted.
    targeting = body["targeting"]
    assert targeting["range"] == {"gte": 60, "lt": None} and targeting["other_filters_ignored"] is False
    assert (targeting["users"], targeting["positives"]) == (400, 63)
    assert targeting["recall"] == 0.63 and targeting["precision"] == 0.1575
    assert targeting["false_positive_rate"] == round(337 / 900, 4)
    assert targeting["expected_recall"] == round(100 * 0.4 ** 0.6 / 100, 4)
    assert "sample" not in body


def test_bounded_range_uses_the_difference_of_two_curve_points(client, world):
    targeting = preview(client, score(world["pid"], gte=60, lt=75)).json["targeting"]
    assert targeting["range"] == {"gte": 60, "lt": 75}
    assert (targeting["users"], targeting["positives"]) == (150, 13)
    assert targeting["precision"] == round(13 / 150, 4) and targeting["recall"] == 0.13


def test_layered_filters_flag_the_test_set_figures(client, world):
    tree = {"all": [score(world["pid"], gte=60), {"filter": "attribute", "name": "country", "op": "eq", "value": "US"}]}
    body = preview(client, tree).json
    assert body["size"] == 2                                          # u1, u5
    assert body["eligible"]["basis"] == "scored_population"
    assert body["predictions"][0]["expected_conversions"] == 1.65
    assert body["targeting"]["other_filters_ignored"] is True


def test_category_and_attribute_only_previews(client, world, engine):
    body = preview(client, {"filter": "event_likelihood_category", "prediction": world["pid"], "in": ["High"]}).json
    assert body["size"] == 2 and body["targeting"] is None
    # No prediction referenced: the eligible audience is every user of the workspace (not of others).
    other = workspaces.ensure(engine, "other").id
    add_users(engine, other, {"x": {"country": "US"}})
    body = preview(client, {"filter": "attribute", "name": "country", "op": "eq", "value": "US"}).json
    assert body["size"] == 3 and body["eligible"] == {"basis": "all_users", "size": 6}
    assert body["predictions"] == [] and body["summary"] == "Targets 3 users (50 % of all users)."


def test_not_of_a_score_reaches_unscored_users_so_the_basis_is_everyone(client, world):
    body = preview(client, {"not": score(world["pid"], gte=60)}).json
    assert body["size"] == 3                                          # u3, u4, u6
    assert body["eligible"] == {"basis": "all_users", "size": 6}
    assert body["predictions"][0]["expected_conversions"] == 0.6      # u3 40 + u6 20; u4 has no score


def test_sample_lists_host_ids_highest_score_first(client, world):
    body = preview(client, score(world["pid"], gte=50), sample=2).json
    assert body["sample"] == [{"user_id": "u1", "prediction_id": world["pid"], "score": 90.0, "category": "High"},
                              {"user_id": "u5", "prediction_id": world["pid"], "score": 75.0, "category": "High"}]
    body = preview(client, {"filter": "attribute", "name": "country", "op": "eq", "value": "US"}, sample=10).json
    assert body["sample"] == [{"user_id": "u1"}, {"user_id": "u3"}, {"user_id": "u5"}]
    assert preview(client, score(world["pid"], gte=50), sample=101).status_code == 400


@pytest.mark.parametrize("status, code, http", [("demo", "prediction_not_targetable", 403),
                                                ("preview", "prediction_not_targetable", 403),
                                                ("archived", "prediction_archived", 409)])
def test_untargetable_predictions_are_refused(client, world, engine, status, code, http):
    other, _ = add_prediction(engine, world["ws"], f"{status}-one", status=status)
    tree = {"all": [score(world["pid"], gte=10), {"any": [{"filter": "reachable", "channel": "email"},
                                                          score(other, gte=50)]}]}
    response = preview(client, tree)
    assert response.status_code == http
    error = response.json["error"]
    assert error["code"] == code and f"{status}-one" in error["message"]
    assert error["details"] == {"prediction_id": other, "name": f"{status}-one", "status": status,
                                "path": "all[1].any[1].prediction"}


def test_unknown_and_foreign_predictions_are_400_at_their_path(client, world, engine):
    response = preview(client, {"any": [score(world["pid"], gte=1), score(9999, gte=1)]})
    assert response.status_code == 400 and response.json["error"]["code"] == "unknown_prediction"
    assert list(response.json["error"]["details"]["definition"]) == ["any[1].prediction"]
    # Workspace B's key cannot use workspace A's prediction, nor learn that it exists.
    acme = workspaces.ensure(engine, "acme")
    workspaces.add_api_key(engine, acme, B_KEY)
    response = preview(client, score(world["pid"], gte=1), key=B_KEY)
    assert response.status_code == 400
    assert response.json["error"]["details"] == {"definition": {"prediction": [
        f"Prediction {world['pid']} does not exist in this workspace."]}}


def test_invalid_definitions_are_400_naming_the_path(client, world):
    tree = {"all": [score(world["pid"], gte=1), {"filter": "reachable", "channel": "email"},
                    {"any": [{"filter": "attribute", "name": "country", "op": "like", "value": "U%"}]}]}
    response = preview(client, tree)
    assert response.status_code == 400
    assert response.json["error"]["details"] == {"definition": {"all[2].any[0].op": [
        "must be one of: eq, ne, lt, lte, gt, gte, in, not_in, exists, not_exists, contains"]}}
    missing = client.post("/v1/audiences/preview", json={}, headers=bearer())
    assert missing.status_code == 400 and list(missing.json["error"]["details"]) == ["definition"]


def test_bad_requests_never_500(client, world):
    deep = "[" * 100_000 + "]" * 100_000
    for body, content_type in [(deep, "application/json"), ("{", "application/json"), ("x", "text/plain"),
                               (json.dumps({"definition": {"not": None}}), "application/json")]:
        response = client.post("/v1/audiences/preview", data=body, content_type=content_type, headers=bearer())
        assert response.status_code in (400, 415), (body[:20], response.status_code)
    assert client.post("/v1/audiences/preview", json={"definition": {}}).status_code == 401


def test_eligible_audience_follows_rescoring_and_erasure(client, world, engine):
    assert preview(client, score(world["pid"], gte=60)).json["eligible"]["size"] == 5
    ids = world["ids"]
    set_scores(engine, world["ws"], world["pid"], {ids["u1"]: 90.0, ids["u2"]: 10.0})
    body = preview(client, score(world["pid"], gte=60)).json
    assert body["eligible"]["size"] == 2 and body["size"] == 1
    assert post_signed(client, "/webhooks/users/delete", {"user_ids": ["u2"]}).status_code == 200
    assert preview(client, score(world["pid"], gte=60)).json["eligible"]["size"] == 1


def test_behaviour_filter_in_a_preview(client, world, engine):
    import time
    add_events(engine, world["ws"], [(world["ids"]["u3"], "purchase", int(time.time()) - 3600)])
    tree = {"all": [score(world["pid"], gte=0), {"filter": "performed", "event": "purchase", "within_days": 7}]}
    assert preview(client, tree).json["size"] == 1


def test_sentence_wording():
    figures = {"scored_users": 10, "goal_event": "sign_up", "window_days": 1, "expected_conversions": 1.2,
               "expected_share": 0.004}
    assert summary(1, 0.0001, True, figures) == ("Targets 1 user (< 0.1 % of the eligible audience); about 1 is "
                                                 "expected to perform 'sign_up' within 1 day, 0.4 % of all "
                                                 "expected conversions.")
    assert summary(12_345, 0.08, False, None) == "Targets 12,345 users (8 % of all users)."
    assert [percent(x) for x in (0, 0.0002, 0.004, 0.41, 0.996, 1)] == ["0 %", "< 0.1 %", "0.4 %", "41 %",
                                                                   "99.6 %", "100 %"]


@pytest.mark.parametrize("bounds, members", [
    ({"lte": 60}, {"u2", "u3", "u6"}),            # an integer upper bound includes a score equal to it
    ({"lt": 60}, {"u3", "u6"}),
    ({"gt": 60}, {"u1", "u5"}),                   # an integer `gt` drops the score equal to it
    ({"gte": 59.5, "lte": 75.5}, {"u2", "u5"}),   # partial buckets at both ends
    ({"gt": 60.0, "lt": 60.5}, set()),            # inside one bucket
    ({"gte": 20, "lte": 20}, {"u6"}),
    ({"gte": 0}, {"u1", "u2", "u3", "u5", "u6"}),
    ({"lte": 100}, {"u1", "u2", "u3", "u5", "u6"}),
])
def test_score_range_sizes_at_bucket_edges(client, world, bounds, members):
    scores = {"u1": 90.0, "u2": 60.0, "u3": 40.0, "u5": 75.0, "u6": 20.0}
    body = preview(client, score(world["pid"], **bounds)).json
    assert body["size"] == len(members), bounds
    assert body["predictions"][0]["expected_conversions"] == round(sum(scores[m] for m in members) / 100, 2)


def test_a_perfect_score_is_in_every_open_ended_range(client, world, engine):
    ids = world["ids"]
    set_scores(engine, world["ws"], world["pid"], {ids["u1"]: 100.0, ids["u2"]: 99.5})
    for bounds in ({"gte": 90}, {"gt": 99.5}, {"gte": 100}, {"lte": 100, "gte": 99.9}):
        assert preview(client, score(world["pid"], **bounds)).json["size"] == (2 if bounds == {"gte": 90} else 1), bounds


def test_a_prediction_named_directly_is_checked_the_same_way(world, engine):
    from plugin.audiences.targeting import targetable_prediction
    from plugin.errors import Conflict, Forbidden, ValidationFailed
    demo, _ = add_prediction(engine, world["ws"], "demo", status="demo")
    archived, _ = add_prediction(engine, world["ws"], "old", status="archived")
    with engine.connect() as conn:
        assert targetable_prediction(conn, world["ws"], world["pid"]).name == "purchase-14d"
        with pytest.raises(Forbidden) as refused:
            targetable_prediction(conn, world["ws"], demo, field="tiers[0].prediction")
        assert refused.value.code == "prediction_not_targetable"
        assert refused.value.details["path"] == "tiers[0].prediction"
        with pytest.raises(Conflict):
            targetable_prediction(conn, world["ws"], archived)
        with pytest.raises(ValidationFailed) as unknown:
            targetable_prediction(conn, world["ws"] + 1000, world["pid"])
        assert unknown.value.details == {"prediction": [f"Prediction {world['pid']} does not exist in this workspace."]}
