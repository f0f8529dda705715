"""Validation of audience definitions: every error names its path in the tree."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from plugin.audiences.schema import MAX_DEPTH, MAX_LEAVES, AudienceTreeSchema, parse_tree

SCORE = {"filter": "event_likelihood_score", "prediction": 1, "gte": 60}
COUNTRY = {"filter": "attribute", "name": "country", "op": "eq", "value": "US"}


def errors_of(tree) -> dict:
    with pytest.raises(ValidationError) as raised:
        parse_tree(tree)
    return raised.value.messages


@pytest.mark.parametrize("tree, path", [
    ({"all": [SCORE, {"filter": "nope"}]}, "all[1].filter"),
    ({"all": [SCORE, COUNTRY, {"any": [{**COUNTRY, "op": "like"}]}]}, "all[2].any[0].op"),
    ({"not": {**SCORE, "gte": "60"}}, "not.gte"),
    ({"any": [{**SCORE, "prediction": "1"}]}, "any[0].prediction"),
    ({**SCORE, "gte": True}, "gte"),
    ({**SCORE, "gte": 101}, "gte"),
    ({**SCORE, "gt": 50}, "gte"),                                          # gt and gte together
    ({"filter": "event_likelihood_score", "prediction": 1}, "$"),          # no bound at all
    ({"all": [{**SCORE, "lte": 20}]}, "all[0]"),                           # empty range
    ({"filter": "event_likelihood_category", "prediction": 1, "in": "High"}, "in"),
    ({"filter": "event_likelihood_category", "prediction": 1, "in": ["High", 3]}, "in[1]"),
    ({"filter": "event_likelihood_category", "prediction": 1, "in": []}, "in"),
    ({**COUNTRY, "op": "in", "value": "US"}, "value"),
    ({**COUNTRY, "op": "not_in", "value": ["US", {"x": 1}]}, "value[1]"),
    ({**COUNTRY, "op": "lt", "value": True}, "value"),
    ({**COUNTRY, "op": "gte", "value": ["a"]}, "value"),
    ({**COUNTRY, "op": "exists"}, "value"),                                # exists takes no value
    ({**COUNTRY, "value": None}, "value"),
    ({**COUNTRY, "name": 'x"y'}, "name"),
    ({"filter": "attribute", "op": "eq", "value": 1}, "name"),
    ({"filter": "performed", "event": "purchase", "min_count": 0}, "min_count"),
    ({"filter": "performed", "event": "purchase", "within_days": 1.5}, "within_days"),
    ({"filter": "not_performed", "event": ""}, "event"),
    ({"filter": "reachable", "channel": "sms"}, "channel"),
    ({"filter": "reachable", "channel": "email", "extra": 1}, "extra"),
    ({"all": [SCORE], "any": [SCORE]}, "$"),
    ({"all": [SCORE], "extra": 1}, "extra"),
    ({"all": []}, "all"),
    ({"any": SCORE}, "any"),
    ({"not": [SCORE]}, "not"),
    ([SCORE], "$"),
    ("everyone", "$"),
    ({"all": [SCORE, 7]}, "all[1]"),
])
def test_errors_name_the_path(tree, path):
    errors = errors_of(tree)
    assert path in errors, errors
    assert all(isinstance(m, str) and m for m in errors[path])


def test_every_error_is_reported_at_once():
    errors = errors_of({"all": [{"filter": "nope"}, {**COUNTRY, "op": "like"}, {**SCORE, "gte": "x"}]})
    assert set(errors) == {"all[0].filter", "all[1].op", "all[2].gte"}


def test_depth_limit():
    tree = COUNTRY
    for _ in range(MAX_DEPTH - 1):
        tree = {"not": tree}
    assert parse_tree(tree)  # exactly the limit is fine
    errors = errors_of({"all": [tree]})
    assert list(errors) == ["all[0]" + ".not" * (MAX_DEPTH - 1)]
    assert "deeper" in errors["all[0]" + ".not" * (MAX_DEPTH - 1)][0]


def test_leaf_limit():
    assert parse_tree({"any": [COUNTRY] * MAX_LEAVES})
    errors = errors_of({"all": [{"any": [COUNTRY] * 60}, {"any": [COUNTRY] * 60}]})
    assert "120" in errors["$"][0]
    assert "any" in errors_of({"any": [COUNTRY] * (MAX_LEAVES + 1)})


def test_deep_json_is_refused_without_recursing():
    tree = COUNTRY
    for _ in range(5000):
        tree = {"not": tree}
    assert len(errors_of(tree)) == 1


def test_normalised_tree_round_trips_and_fills_defaults():
    tree = {"all": [{"filter": "performed", "event": "purchase"},
                    {"filter": "event_likelihood_category", "prediction": 2, "in": ["High"]},
                    {"not": {"filter": "reachable", "channel": "push"}}]}
    parsed = parse_tree(tree)
    assert parsed["all"][0] == {"filter": "performed", "event": "purchase", "min_count": 1, "within_days": None}
    assert parsed["all"][1]["in"] == ["High"]
    assert parse_tree(parsed) == parsed
    assert AudienceTreeSchema().load(tree) == parsed
