"""The likely predictions / train / score / export / backtest commands (click's CliRunner)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import cli
from plugin.store.tables import scores
from tests.plugin.predictions_fixtures import SCORED, seed_goal_event


@pytest.fixture(autouse=True)
def _goal_seen(request):
    """The empty stores these tests start from have seen a purchase: its goal is a known event."""
    if "database_url" in request.fixturenames:
        seed_goal_event(request.getfixturevalue("database_url"))


@pytest.fixture
def likely(monkeypatch):
    """Run `likely …` against a store URL; returns (exit code, output)."""
    def run(url: str, *args: str):
        monkeypatch.setenv("LIKELY_DATABASE_URL", url)
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        return result.exit_code, result.output
    return run


def test_create_list_show_and_archive(likely, database_url):
    code, out = likely(database_url, "predictions", "create", "--name", "Big buyers", "--event", "purchase",
                       "--where", '{"property": "value", "op": "gt", "value": 20}', "--window-days", "7",
                       "--categories", "quantile:Low=50,Medium=30,High=20", "--json")
    assert code == 0, out
    created = json.loads(out)
    assert created["goal_condition"]["value"] == 20 and created["categories"]["type"] == "quantile"
    code, out = likely(database_url, "predictions", "list", "--json")
    assert [p["name"] for p in json.loads(out)["predictions"]] == ["Big buyers"]
    for reference in ("Big buyers", str(created["id"])):  # by name or by id
        code, out = likely(database_url, "predictions", "show", reference, "--json")
        assert code == 0 and json.loads(out)["id"] == created["id"]
    code, out = likely(database_url, "predictions", "show", "Big buyers")
    assert "Big buyers [active]" in out and "value > 20" in out
    code, out = likely(database_url, "predictions", "archive", "Big buyers", "--json")
    assert code == 0 and json.loads(out)["status"] == "archived"
    code, out = likely(database_url, "predictions", "list", "--status", "active", "--json")
    assert json.loads(out) == {"predictions": []}


@pytest.mark.parametrize("args, words", [
    (["--window-days", "61"], "window_days"),
    (["--window-days", "7", "--where", "{not json"], "--where"),
    (["--window-days", "7", "--where", '{"property": "value", "op": "gt", "value": "x"}'], "number"),
    (["--window-days", "7", "--categories", "fixed:Low=10"], "start at 0"),
])
def test_invalid_definitions_are_refused_with_the_reason(likely, database_url, args, words):
    code, out = likely(database_url, "predictions", "create", "--name", "x", "--event", "purchase", *args)
    assert code != 0 and words in out
    assert json.loads(likely(database_url, "predictions", "list", "--json")[1]) == {"predictions": []}


def test_unknown_prediction_is_a_clear_error(likely, database_url):
    code, out = likely(database_url, "predictions", "show", "nope")
    assert code == 1 and "no prediction named or numbered 'nope'" in out


def test_train_refuses_too_little_data_with_the_counts(likely, database_url):
    likely(database_url, "predictions", "create", "--name", "p", "--event", "purchase", "--window-days", "7")
    code, out = likely(database_url, "train", "p", "--json")
    assert code == 1 and "not enough data" in out and "not_enough_data" in out and '"positives": 0' in out


def test_train_score_show_export_and_backtest(likely, trained):
    code, out = likely(trained.url, "train", SCORED, "--as-of", "2025-05-18", "--json")
    assert code == 0, out
    assert json.loads(out)["version"] == 2
    code, out = likely(trained.url, "score", SCORED, "--as-of", "2025-05-18", "--json")
    assert code == 0, out
    run = json.loads(out)
    assert run["model_version"] == 2 and run["users_scored"] > 0 and set(run["timings"]) >= {"swap", "predict"}

    code, out = likely(trained.url, "predictions", "show", SCORED, "--json")
    metrics = json.loads(out)["model"]["metrics"]
    assert metrics["quality_band"] in ("Poor", "Fair", "Good", "Excellent") and "threshold_curve" in metrics

    code, out = likely(trained.url, "export", "scores", SCORED)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["user_id", "score", "category"] and len(rows) - 1 == run["users_scored"]
    assert rows[1][0].startswith("demo-user-") and float(rows[1][1]) >= float(rows[-1][1])
    assert {r[2] for r in rows[1:]} <= {"Low", "Medium", "High"}

    code, out = likely(trained.url, "backtest", SCORED, "--json")
    assert code == 0 and len(json.loads(out)["backtests"]) == 2  # both runs (as of 2025-05-18) are due
    code, out = likely(trained.url, "backtest", SCORED)
    assert "no scoring run is due" in out


def test_export_to_a_file(likely, trained, tmp_path):
    target = tmp_path / "scores.csv"
    code, out = likely(trained.url, "export", "scores", SCORED, "--output", str(target))
    assert code == 0
    with trained.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(scores)).scalar()
    assert len(target.read_text().splitlines()) == stored + 1


def test_create_prints_the_data_check_and_refuses_an_unknown_goal(likely, database_url):
    code, out = likely(database_url, "predictions", "create", "--name", "p", "--event", "purchase", "--window-days", "7")
    assert code == 0, out
    assert "data check, last 7 days:" in out and "past converters" in out and "not_enough_data" in out
    code, out = likely(database_url, "predictions", "create", "--name", "q", "--event", "nothing_like_it",
                       "--window-days", "7")
    assert code == 1 and "unknown_goal_event" in out
    assert [p["name"] for p in json.loads(likely(database_url, "predictions", "list", "--json")[1])["predictions"]] \
        == ["p"]
