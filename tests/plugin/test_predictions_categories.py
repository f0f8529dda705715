"""Category schemes: boundaries, custom cut points, quantiles, the CLI spec, and the SQL form."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import literal, select

from plugin.predictions import categories

DEFAULT = categories.resolve_bounds(categories.DEFAULT_SCHEME)


@pytest.mark.parametrize("score, expected", [
    (0, "Low"), (49.99, "Low"), (50, "Medium"), (50.01, "Medium"), (74.99, "Medium"), (75, "High"), (100, "High"),
])
def test_default_bins_are_half_open_with_the_boundary_in_the_upper_bin(score, expected):
    assert categories.category_of(score, DEFAULT) == expected
    assert categories.assign(np.array([score]), DEFAULT)[0] == expected


def test_custom_cut_points_and_names():
    scheme = categories.parse_spec("fixed:Cold=0,Warm=30,Hot=60,Burning=90")
    bounds = categories.resolve_bounds(scheme)
    got = categories.assign(np.array([0, 29.99, 30, 59.99, 60, 89.99, 90, 100]), bounds)
    assert got.tolist() == ["Cold", "Cold", "Warm", "Warm", "Hot", "Hot", "Burning", "Burning"]
    assert categories.score_range(bounds, "Warm") == (30, 60)
    assert categories.score_range(bounds, "Burning") == (90, None)


def test_quantile_cuts_follow_the_runs_distribution():
    scheme = categories.parse_spec("quantile:Low=rest,Medium=30,High=20")
    assert [b["share"] for b in scheme["bins"]] == pytest.approx([0.5, 0.3, 0.2])
    scores = np.arange(1000) / 10.0  # 0.0 … 99.9, all distinct
    bounds = categories.resolve_bounds(scheme, categories.hundredths_histogram(scores))
    names = categories.assign(scores, bounds)
    assert (names == "High").sum() == 200 and (names == "Medium").sum() == 300 and (names == "Low").sum() == 500
    # The top 20 % are exactly the 200 best scores.
    assert set(np.flatnonzero(names == "High")) == set(range(800, 1000))


def test_quantile_cuts_never_split_equal_scores():
    scores = np.array([10.0] * 30 + [40.0] * 50 + [90.0] * 20)
    scheme = categories.validate({"type": "quantile", "bins": [{"name": "Low", "share": 0.75},
                                                               {"name": "High", "share": 0.25}]})
    names = categories.assign(scores, categories.resolve_bounds(scheme, categories.hundredths_histogram(scores)))
    for value in (10.0, 40.0, 90.0):
        assert len(set(names[scores == value])) == 1
    # 25 % wanted on top: 20 % (the 90s) is closer than 70 % (the 40s and 90s).
    assert (names == "High").sum() == 20


@pytest.mark.parametrize("scheme, message", [
    ({"type": "fixed", "bins": [{"name": "A", "min": 10}]}, "start at 0"),
    ({"type": "fixed", "bins": [{"name": "A", "min": 0}, {"name": "B", "min": 0}]}, "strictly increase"),
    ({"type": "fixed", "bins": [{"name": "A", "min": 0}, {"name": "A", "min": 50}]}, "distinct"),
    ({"type": "fixed", "bins": [{"name": "A", "min": 0}, {"name": "B", "min": 101}]}, "between 0 and 100"),
    ({"type": "quantile", "bins": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}]}, "sum to 1"),
    ({"type": "ranked", "bins": []}, "fixed"),
    ({"type": "fixed", "bins": []}, "1 to"),
])
def test_invalid_schemes_say_what_is_wrong(scheme, message):
    with pytest.raises(ValueError, match=message):
        categories.validate(scheme)


@pytest.mark.parametrize("spec", ["fixed:Low", "quantile:A=50,B=nope", "bins:A=1", "{bad json"])
def test_invalid_cli_specs_are_refused(spec):
    with pytest.raises(ValueError):
        categories.parse_spec(spec)


def test_default_spec_and_json_spec():
    assert categories.parse_spec("default") == categories.DEFAULT_SCHEME
    assert categories.parse_spec('{"type": "fixed", "bins": [{"name": "All", "min": 0}]}')["bins"][0]["name"] == "All"


@pytest.mark.parametrize("score", [0.0, 49.99, 50.0, 74.99, 75.0, 100.0])
def test_sql_expression_applies_the_same_rule(engine, score):
    expression = categories.case_expression(literal(score), DEFAULT)
    with engine.connect() as conn:
        assert conn.execute(select(expression)).scalar() == categories.category_of(score, DEFAULT)
