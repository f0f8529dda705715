"""Scoring runs: every eligible user once, atomic replacement, kept history, categories."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from plugin.errors import Conflict
from plugin.predictions import categories, definitions, history, scoring, training
from plugin.predictions.eligibility import eligible_users
from plugin.store import transaction
from plugin.store.tables import scores, scoring_run_chunks, scoring_runs
from tests.plugin.predictions_fixtures import AS_OF, END, new_prediction


def stored(engine, prediction_id):
    with engine.connect() as conn:
        return conn.execute(select(scores.c.user_id, scores.c.score, scores.c.category, scores.c.model_id,
                                   scores.c.workspace_id).where(scores.c.prediction_id == prediction_id)
                            .order_by(scores.c.user_id)).all()


def test_every_eligible_user_is_scored_once(trained):
    prediction = trained.prediction()
    rows = stored(trained.engine, prediction.id)
    with trained.engine.connect() as conn:
        eligible = set(conn.execute(eligible_users(conn, prediction, AS_OF)).scalars())
        run = scoring.latest_run(conn, prediction.id)
    assert {r.user_id for r in rows} == eligible and len(rows) == len(eligible) == run.users_scored
    bounds = categories.resolve_bounds(categories.DEFAULT_SCHEME)
    assert all(0 <= r.score <= 100 and r.category == categories.category_of(r.score, bounds) for r in rows)
    assert {r.model_id for r in rows} == {prediction.current_model_id} and {r.workspace_id for r in rows} == {1}
    assert sum(run.histogram) == len(rows)
    assert sum(run.categories["users"].values()) == len(rows)
    assert run.expected_conversions == pytest.approx(sum(r.score for r in rows) / 100, rel=1e-6)


def test_readers_see_the_whole_previous_run_until_the_new_one_commits(trained):
    prediction = trained.prediction()
    before = stored(trained.engine, prediction.id)
    old_model = prediction.current_model_id
    training.train(trained.engine, prediction, AS_OF)
    with trained.engine.connect() as conn:
        prediction = definitions.get(conn, 1, prediction.id)
    seen = []

    def look(written: int) -> None:  # called inside the swap transaction, after each chunk
        with trained.engine.connect() as reader:
            rows = reader.execute(select(scores.c.model_id, func.count()).where(
                scores.c.prediction_id == prediction.id).group_by(scores.c.model_id)).all()
        seen.append((written, rows))

    scoring.score(trained.engine, prediction, AS_OF, chunk_users=800, during_swap=look)
    assert len(seen) > 2  # several chunks were written inside the one transaction
    assert all(rows == [(old_model, len(before))] for _, rows in seen)
    after = stored(trained.engine, prediction.id)
    assert {r.model_id for r in after} == {prediction.current_model_id} != {old_model}
    assert len(after) == len(before)


def test_a_failed_swap_changes_nothing(trained):
    prediction = trained.prediction()
    before = stored(trained.engine, prediction.id)

    def crash(written: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        scoring.score(trained.engine, prediction, END, chunk_users=800, during_swap=crash)
    assert stored(trained.engine, prediction.id) == before
    with trained.engine.connect() as conn:
        failed = conn.execute(select(scoring_runs).order_by(scoring_runs.c.id.desc())).first()
        chunks = conn.execute(select(func.count()).where(scoring_run_chunks.c.run_id == failed.id)).scalar()
        assert failed.status == "failed" and chunks == 0
        assert scoring.latest_run(conn, prediction.id).id != failed.id


def test_each_runs_scores_are_kept_for_backtests(trained):
    prediction = trained.prediction()
    first = stored(trained.engine, prediction.id)
    with trained.engine.connect() as conn:
        first_run = scoring.latest_run(conn, prediction.id)
    scoring.score(trained.engine, prediction, END, chunk_users=700)
    with trained.engine.connect() as conn:
        user_ids, kept = history.read_all(conn, first_run.id)
    assert user_ids.tolist() == [r.user_id for r in first] and kept.tolist() == [r.score for r in first]


def test_history_encoding_round_trips():
    ids = np.array([9, 3, 1_000_000_000_007, 4], dtype=np.int64)
    values = np.array([0.0, 12.34, 100.0, 99.99])
    got_ids, got_scores = history.decode(*history.encode(ids, values))
    order = np.argsort(ids)
    assert got_ids.tolist() == ids[order].tolist() and got_scores.tolist() == values[order].tolist()


def test_quantile_categories_hold_their_shares_and_follow_a_scheme_change(trained):
    prediction = trained.prediction()
    scheme = categories.parse_spec("quantile:Low=50,Medium=30,High=20")
    with transaction(trained.engine) as conn:
        definitions.change(conn, 1, prediction.id, {"categories": scheme}, max_active=5)
    rows = stored(trained.engine, prediction.id)
    share = {name: sum(r.category == name for r in rows) / len(rows) for name in ("Low", "Medium", "High")}
    assert share == pytest.approx({"Low": 0.5, "Medium": 0.3, "High": 0.2}, abs=0.03)
    high = [r.score for r in rows if r.category == "High"]
    assert min(high) >= max(r.score for r in rows if r.category != "High")
    with trained.engine.connect() as conn:
        prediction = definitions.get(conn, 1, prediction.id)
    summary = scoring.score(trained.engine, prediction, AS_OF)
    assert summary["categories"]["users"]["High"] / summary["users_scored"] == pytest.approx(0.2, abs=0.03)


def test_scoring_needs_a_model_and_a_live_prediction(engine):
    prediction = new_prediction(engine)
    with pytest.raises(Conflict) as refused:
        scoring.score(engine, prediction, END)
    assert refused.value.code == "no_model"
    with transaction(engine) as conn:
        prediction = definitions.archive(conn, 1, prediction.id)
    with pytest.raises(Conflict) as refused:
        scoring.score(engine, prediction, END)
    assert refused.value.code == "prediction_archived"


def test_an_audience_tree_decides_who_is_scored(trained, monkeypatch):
    """Eligibility is one function; a tree goes to the audiences compiler (stood in for here)."""
    import sys
    import types

    from plugin.store.tables import users
    calls = []

    def compile_audience(tree, workspace_id, now_ts):
        calls.append((tree, workspace_id, now_ts))
        return select(users.c.id.label("id")).where(users.c.workspace_id == workspace_id,
                                                    users.c.external_id.like("demo-user-%1"))

    monkeypatch.setitem(sys.modules, "plugin.audiences.compiler",
                        types.SimpleNamespace(compile_audience=compile_audience, parse_definition=lambda tree: tree))
    tree = {"attribute": "country", "op": "eq", "value": "DE"}
    prediction = trained.prediction()
    with transaction(trained.engine) as conn:
        prediction = definitions.change(conn, 1, prediction.id, {"audience": tree}, max_active=5)
    scoring.score(trained.engine, prediction, AS_OF)
    rows = stored(trained.engine, prediction.id)
    with trained.engine.connect() as conn:
        ending_in_1 = conn.execute(select(func.count()).where(users.c.external_id.like("demo-user-%1"))).scalar()
        names = set(conn.execute(select(users.c.external_id).where(users.c.id.in_([r.user_id for r in rows])))
                    .scalars())
    assert len(rows) == ending_in_1 and all(n.endswith("1") for n in names)
    assert calls and calls[0] == (tree, 1, AS_OF)
