"""Issue 13 point 3: audience definitions cannot tie up a worker.

Replayed against the real app on both stores: the red team's tree (100 `in` filters of 1,000
values: 37–39 s per preview before) is refused with a 400 naming the budget; a long `in` list
is one bound parameter and one membership test; only the running backend's SQL is built; and
a statement that runs past its deadline answers 503 `query_timeout` instead of holding the
worker (no wall clock in the assertions: the slow statements below never end on their own).
"""
from __future__ import annotations

import pytest
from flask import jsonify
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from plugin import create_app, store
from plugin.audiences import jsonsql
from plugin.audiences.compiler import compile_audience
from tests.helpers import API_KEY, WEBHOOK_SECRET, bearer
from tests.plugin import campaign_data as cd

NOW = 1_790_000_000


def in_filter(i: int, values: int) -> dict:
    return {"filter": "attribute", "name": f"attr{i}", "op": "in", "value": [f"v{j}" for j in range(values)]}


@pytest.fixture
def world(engine):
    ws = cd.workspace_id(engine)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"attr0": f"v{i}", "n": i, "flag": i % 2 == 0}) for i in range(30)])
    return {"ws": ws, "ids": ids}


@pytest.mark.parametrize("path", ["/v1/audiences/preview", "/v1/segments"])
def test_the_red_teams_tree_is_refused_with_the_budget_named(client, world, path):
    tree = {"all": [in_filter(i, 1000) for i in range(100)]}
    answer = client.post(path, json={"name": "big", "definition": tree}, headers=bearer())
    assert answer.status_code == 400
    problem = answer.json["error"]["details"]["definition"]["$"][0]
    assert "audience budget of 5000" in problem and "100100" in problem


def test_a_tree_just_within_the_budget_is_previewed(client, world):
    tree = {"any": [in_filter(0, 1000), *(in_filter(i, 999) for i in range(1, 4))]}  # 4 + 3997 = 4001
    answer = client.post("/v1/audiences/preview", json={"definition": tree}, headers=bearer())
    assert answer.status_code == 200, answer.json
    assert answer.json["size"] == 30  # u0..u29 have attr0 = v0..v29, all listed


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("op", ["in", "not_in"])
def test_a_long_in_list_is_one_parameter_and_one_membership_test(dialect, op):
    values = [f"v{j}" for j in range(700)] + list(range(300))
    statement = compile_audience({"filter": "attribute", "name": "country", "op": op, "value": values}, 1, NOW)
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    # Before: one placeholder per value on SQLite, one comparison per value on PostgreSQL.
    placeholders = str(compiled).count("?") + str(compiled).count("%(")
    assert len(compiled.params) < 20 and placeholders < 20


@pytest.mark.parametrize("op, expected", [("in", {"u1", "u2", "u4"}), ("not_in", {"u0", "u3", "u5"})])
def test_membership_over_one_parameter_keeps_json_types_apart(client, engine, op, expected):
    ws = cd.workspace_id(engine)
    cd.add_users(engine, ws, [("u0", {"k": "1"}), ("u1", {"k": 1}), ("u2", {"k": 2.0}), ("u3", {"k": True}),
                              ("u4", {"k": "x"}), ("u5", {"k": "y"})])
    tree = {"filter": "attribute", "name": "k", "op": op, "value": [1, 2, "x", False]}
    with engine.connect() as conn:
        found = set(conn.execute(compile_audience(tree, ws, NOW)).scalars())
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, external_id FROM users")).all())
    assert {names[i] for i in found} == expected


def test_only_the_running_backends_sql_is_built(engine, world, monkeypatch):
    other = jsonsql.PostgresAttribute if engine.dialect.name == "sqlite" else jsonsql.SqliteAttribute

    def refuse(*args, **kwargs):
        raise AssertionError(f"{other.__name__} was built for a {engine.dialect.name} statement")
    monkeypatch.setattr(other, "__init__", refuse)
    tree = {"all": [in_filter(0, 100), {"filter": "attribute", "name": "n", "op": "gte", "value": 3},
                    {"not": {"filter": "reachable", "channel": "email"}}]}
    with engine.connect() as conn:
        assert len(conn.execute(compile_audience(tree, world["ws"], NOW)).all()) == 27


# -- statement deadlines ----------------------------------------------------------------------------
NEVER_ENDS = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
              "SELECT count(*) FROM r")


def slow_app(database_url: str, timeout_ms: int):
    app = create_app({"database_url": database_url, "webhook_secrets": [WEBHOOK_SECRET],
                      "api_keys": [API_KEY], "statement_timeout_ms": timeout_ms})

    # A view that runs one statement that never ends, through the app's own engine and
    # request connection, as any API view would.
    @app.get("/v1/slow-for-test")
    def slow():
        with store.reading(store.engine()) as conn:
            return jsonify(count=conn.execute(text(NEVER_ENDS)).scalar())
    return app


def test_a_statement_past_its_deadline_is_stopped_with_503_query_timeout(database_url):
    app = slow_app(database_url, timeout_ms=200)
    try:
        client = app.test_client()
        answer = client.get("/v1/slow-for-test", headers=bearer())
        assert answer.status_code == 503
        assert answer.json["error"]["code"] == "query_timeout"
        assert answer.json["error"]["details"] == {"timeout_ms": 200}
        # The worker and its connections are free again: the next request is served.
        assert client.get("/v1/jobs", headers=bearer()).status_code == 200
    finally:
        app.extensions["likely_engine"].dispose()


def test_an_expensive_preview_is_stopped_at_its_deadline_not_left_running(database_url, engine):
    ws = cd.workspace_id(engine)
    cd.add_users(engine, ws, [(f"u{i}", {f"a{j}": f"value {i} {j}" for j in range(20)}) for i in range(20_000)])
    tree = {"any": [{"filter": "attribute", "name": f"a{j}", "op": "contains", "value": "zz"} for j in range(20)]}
    app = slow_app(database_url, timeout_ms=1)
    try:
        answer = app.test_client().post("/v1/audiences/preview", json={"definition": tree}, headers=bearer())
        assert answer.status_code == 503 and answer.json["error"]["code"] == "query_timeout"
    finally:
        app.extensions["likely_engine"].dispose()


def test_jobs_and_commands_run_without_the_request_deadline(database_url):
    app = slow_app(database_url, timeout_ms=1)
    try:
        with app.app_context():  # a job: the app's engine, no request
            with store.engine().connect() as conn:
                total = conn.execute(text("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                                          "WHERE n < 200000) SELECT count(*) FROM r")).scalar()
        assert total == 200_000
    finally:
        app.extensions["likely_engine"].dispose()
