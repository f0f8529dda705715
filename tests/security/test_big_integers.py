"""Issue 13 point 6: no input yields a 500. Integers beyond 64 bits in every id, cursor and
filter value the API takes are a 400 naming the field (an OverflowError in the driver before).

Bodies are sent as raw JSON text: Python's json module writes 2**64 as the 20-digit number a
client would send.
"""
from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import bearer
from tests.plugin import campaign_data as cd

HUGE = 2**64
JUST_TOO_BIG = 2**63


@pytest.fixture
def world(engine):
    ws = cd.workspace_id(engine)
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [("u1", {"email": "u1@example.com", "points": 3})])
    cd.add_scores(engine, ws, pid, {ids["u1"]: 80.0})
    return {"ws": ws, "pid": pid}


def send(client, method, path, body=None):
    data = None if body is None else json.dumps(body)
    return client.open(path, method=method, data=data, content_type="application/json", headers=bearer())


def field_error(answer) -> dict:
    assert answer.status_code == 400, (answer.status_code, answer.get_data(as_text=True)[:300])
    error = answer.json["error"]
    assert error["code"] != "internal_error"
    return error["details"]


def score_leaf(prediction):
    return {"filter": "event_likelihood_score", "prediction": prediction, "gte": 50}


def attribute_leaf(value, op="eq"):
    return {"filter": "attribute", "name": "points", "op": op, "value": value}


def test_a_backtest_run_id_beyond_64_bits_is_a_400_on_run_id(client, world):
    details = field_error(send(client, "POST", f"/v1/predictions/{world['pid']}/backtests", {"run_id": HUGE}))
    assert "run_id" in details


def test_a_jobs_cursor_beyond_64_bits_is_a_400_on_before(client, world):
    details = field_error(client.get(f"/v1/jobs?before={HUGE}", headers=bearer()))
    assert "before" in details


@pytest.mark.parametrize("leaf, path", [
    (score_leaf(HUGE), "prediction"),
    ({"filter": "event_likelihood_category", "prediction": HUGE, "in": ["High"]}, "prediction"),
    (attribute_leaf(JUST_TOO_BIG), "value"),
    (attribute_leaf(-(2**63) - 1, "gt"), "value"),
    (attribute_leaf([1, HUGE], "in"), "value[1]"),
    (attribute_leaf([HUGE], "not_in"), "value[0]"),
    (attribute_leaf(HUGE, "contains"), "value"),
])
def test_an_audience_filter_with_a_number_beyond_64_bits_is_a_400_with_its_path(client, world, leaf, path):
    tree = {"all": [score_leaf(world["pid"]), leaf]}
    details = field_error(send(client, "POST", "/v1/audiences/preview", {"definition": tree}))
    assert list(details["definition"]) == [f"all[1].{path}"]
    details = field_error(send(client, "POST", "/v1/segments", {"name": "big", "definition": tree}))
    assert list(details["definition"]) == [f"all[1].{path}"]


def test_the_largest_values_are_valid_and_compared_safely(client, world):
    tree = {"any": [score_leaf(world["pid"]), attribute_leaf(2**63 - 1), attribute_leaf([-(2**63)], "in")]}
    answer = send(client, "POST", "/v1/audiences/preview", {"definition": tree})
    assert answer.status_code == 200, answer.json
    unknown = send(client, "POST", "/v1/audiences/preview", {"definition": score_leaf(2**31 - 1)})
    assert unknown.status_code in (400, 404) and unknown.json["error"]["code"] != "internal_error"
    assert "prediction" in json.dumps(unknown.json["error"]["details"])


@pytest.mark.parametrize("prediction", [2**31, 2**63 - 1])
def test_an_id_beyond_the_stores_keys_is_a_400_not_a_driver_error(client, world, prediction):
    details = field_error(send(client, "POST", "/v1/audiences/preview", {"definition": score_leaf(prediction)}))
    assert list(details["definition"]) == ["prediction"]


def test_a_campaign_for_a_prediction_id_beyond_the_id_range_is_a_400_on_prediction_id(client, world):
    details = field_error(send(client, "POST", "/v1/campaigns", cd.campaign_body(HUGE)))
    assert "prediction_id" in details
    preset = {"preset": "playbook", "name": "p", "prediction_id": HUGE}
    details = field_error(send(client, "POST", "/v1/campaigns", preset))  # a preset-based create
    assert "prediction_id" in details


def test_a_campaign_audience_with_a_huge_attribute_value_is_a_400(client, world):
    body = cd.campaign_body(world["pid"], audience=attribute_leaf(HUGE))
    answer = send(client, "POST", "/v1/campaigns", body)
    assert answer.status_code == 400 and answer.json["error"]["code"] != "internal_error"
    assert "value" in json.dumps(answer.json["error"]["details"])


def test_a_prediction_goal_condition_beyond_64_bits_is_a_400(client, world):
    body = {"name": "big", "goal_event": "purchase", "window_days": 7,
            "goal_condition": {"property": "value", "op": "gt", "value": HUGE}}
    details = field_error(send(client, "POST", "/v1/predictions", body))
    assert "goal_condition" in details


@pytest.mark.parametrize("query", [f"version={HUGE}", f"limit={HUGE}",
                                   "cursor=" + base64.urlsafe_b64encode(f"1:{HUGE}".encode()).decode(),
                                   "cursor=" + base64.urlsafe_b64encode(f"{HUGE}:1".encode()).decode()])
def test_segment_member_pages_refuse_huge_versions_and_cursors(client, world, query):
    made = send(client, "POST", "/v1/segments", {"name": "s", "definition": score_leaf(world["pid"])})
    assert made.status_code == 201, made.json
    field_error(client.get(f"/v1/segments/{made.json['id']}/members?{query}", headers=bearer()))


@pytest.mark.parametrize("query", [f"since={HUGE}", f"since=1&until={HUGE}"])
def test_segment_changes_refuse_huge_versions(client, world, query):
    made = send(client, "POST", "/v1/segments", {"name": "s", "definition": score_leaf(world["pid"])})
    field_error(client.get(f"/v1/segments/{made.json['id']}/changes?{query}", headers=bearer()))


@pytest.mark.parametrize("path", ["/v1/campaigns/{big}", "/v1/predictions/{big}", "/v1/segments/{big}/members"])
def test_huge_ids_in_paths_are_a_404_not_a_500(client, world, path):
    assert client.get(path.format(big=HUGE), headers=bearer()).status_code == 404
