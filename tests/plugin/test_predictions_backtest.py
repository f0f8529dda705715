"""Backtests: a run's scores against what users did once its window passed."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from plugin.errors import Conflict
from plugin.predictions import backtest, history, scoring
from plugin.store.tables import users
from tests.helpers import bearer
from tests.plugin.predictions_fixtures import AS_OF, DAY, END, event, write


def test_backtest_compares_a_runs_scores_with_what_users_then_did(trained):
    prediction = trained.prediction()
    with trained.engine.connect() as conn:
        run = scoring.latest_run(conn, prediction.id)
        user_ids, kept = history.read_all(conn, run.id)
        converters = backtest.converters(conn, prediction, AS_OF, AS_OF + 14 * DAY)
    results = backtest.run(trained.engine, prediction, now_ts=END)
    assert [r["run_id"] for r in results] == [run.id]
    m = results[0]["metrics"]
    assert m["users"] == len(user_ids) == run.users_scored
    assert m["actual_conversions"] == int(np.isin(user_ids, converters).sum()) > 0
    assert m["expected_conversions"] == pytest.approx(kept.sum() / 100, abs=0.01)
    assert m["expected_conversions"] == pytest.approx(m["actual_conversions"], rel=0.25)
    assert 0.6 < m["auc"] < 1 and 20 <= m["prediction_quality"] <= 90
    assert [c["category"] for c in m["categories"]] == ["Low", "Medium", "High"]
    assert sum(c["users"] for c in m["categories"]) == m["users"]
    assert sum(c["actual_conversions"] for c in m["categories"]) == m["actual_conversions"]
    rates = [c["actual_rate"] for c in m["categories"] if c["users"]]
    assert rates == sorted(rates)  # higher bands convert more
    assert backtest.run(trained.engine, prediction, now_ts=END) == []  # done once per run


def test_a_run_is_backtested_only_after_its_window(trained):
    prediction = trained.prediction()
    with trained.engine.connect() as conn:
        run = scoring.latest_run(conn, prediction.id)
    assert backtest.run(trained.engine, prediction, now_ts=AS_OF + 14 * DAY - 1) == []
    with pytest.raises(Conflict) as refused:
        backtest.run(trained.engine, prediction, now_ts=AS_OF + DAY, run_id=run.id)
    assert refused.value.code == "window_not_passed"


def test_late_conversions_count_for_the_window_they_fall_in(trained):
    prediction = trained.prediction()
    with trained.engine.connect() as conn:
        run = scoring.latest_run(conn, prediction.id)
        user_ids, _ = history.read_all(conn, run.id)
        before = set(backtest.converters(conn, prediction, AS_OF, AS_OF + 14 * DAY).tolist()) & set(user_ids.tolist())
    quiet = [u for u in user_ids.tolist() if u not in before][:2]
    with trained.engine.connect() as conn:
        on_time, late = (conn.execute(select(users.c.external_id).where(users.c.id == u)).scalar() for u in quiet)
    # A purchase on the window's last second counts; one a second later does not.
    write(trained.engine, [event(on_time, "purchase", AS_OF + 14 * DAY), event(late, "purchase", AS_OF + 14 * DAY + 1)])
    m = backtest.run(trained.engine, prediction, now_ts=END)[0]["metrics"]
    assert m["actual_conversions"] == len(before) + 1


def test_backtests_over_the_api(trained):
    pid = trained.prediction().id
    assert trained.client.get(f"/v1/predictions/{pid}/backtests", headers=bearer()).json == {"backtests": []}
    created = trained.client.post(f"/v1/predictions/{pid}/backtests", headers=bearer())
    assert created.status_code == 201 and created.json["backtests"][0]["metrics"]["users"] > 0
    listed = trained.client.get(f"/v1/predictions/{pid}/backtests", headers=bearer()).json["backtests"]
    assert [b["id"] for b in listed] == [created.json["backtests"][0]["id"]]
    assert trained.client.get(f"/v1/predictions/{pid}", headers=bearer()).json["last_backtested_at"]
    missing = trained.client.post(f"/v1/predictions/{pid}/backtests", headers=bearer(), json={"run_id": 999})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "run_not_found"
