"""Every filter, on a small hand-made store, with the members written out by hand."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin import workspaces
from plugin.audiences.compiler import compile_audience
from plugin.store import make_engine
from plugin.store.migrate import upgrade
from tests.plugin.audience_data import NOW, add_events, add_prediction, add_users, default_id, set_scores

DAY = 86_400
PEOPLE = {
    "u1": {"country": "US", "age": 30, "plan": "pro", "tags": ["vip", 1], "email": "u1@x.io",
           "push_tokens": ["t"], "phone": "+1 555 0100"},
    "u2": {"country": "FR", "age": 17.5, "email": "u2@x.io", "email_consent": False, "push_tokens": [],
           "ads_consent": False},
    "u3": {"country": "us", "age": "30", "plan": None},
    "u4": {},
    "u5": {"country": "DE", "age": 65, "email": "", "phone": "+49 1", "unsubscribed": True, "push_tokens": ["a"],
           "in_app_consent": False},
    "u6": {"age": True, "tags": "vip-lounge", "a.b": 5},
    "u7": {"phone": "+33 6", "ads_consent": True},
}
EVERYONE = set(PEOPLE)


@pytest.fixture
def store(engine):
    """The people above in `default`, a decoy copy in `other`, scores and events; returns a runner."""
    ws = default_id(engine)
    ids = add_users(engine, ws, PEOPLE)
    other = workspaces.ensure(engine, "other").id
    decoys = add_users(engine, other, PEOPLE)
    p1, _ = add_prediction(engine, ws, "p1")
    p2, _ = add_prediction(engine, ws, "p2")  # never scored
    set_scores(engine, ws, p1, {ids["u1"]: 90.0, ids["u2"]: 60.0, ids["u3"]: 40.0, ids["u5"]: 75.0})
    foreign, _ = add_prediction(engine, other, "foreign")
    set_scores(engine, other, foreign, {uid: 99.0 for uid in decoys.values()} | {ids["u4"]: 99.0})
    add_events(engine, ws, [(ids["u1"], "purchase", NOW - DAY), (ids["u1"], "purchase", NOW - 10 * DAY),
                            (ids["u1"], "purchase", NOW - 30 * DAY), (ids["u2"], "purchase", NOW - 40 * DAY),
                            (ids["u3"], "view", NOW - DAY), (ids["u5"], "purchase", NOW + DAY)])
    add_events(engine, other, [(uid, "purchase", NOW - DAY) for uid in decoys.values()])
    by_id = {v: k for k, v in ids.items()}

    def members(tree) -> set[str]:
        with engine.connect() as conn:
            found = conn.execute(compile_audience(tree, ws, NOW)).scalars().all()
        assert len(found) == len(set(found)), "a user is listed twice"
        assert set(found) <= set(by_id), "a user of another workspace leaked in"
        return {by_id[i] for i in found}
    members.p1, members.p2, members.foreign = p1, p2, foreign
    return members


def check(members, cases):
    for tree, expected in cases:
        assert members(tree) == set(expected), tree


def attr(name, op, value=None):
    leaf = {"filter": "attribute", "name": name, "op": op}
    return leaf if value is None else {**leaf, "value": value}


def test_score_filters(store):
    p = store.p1
    check(store, [
        ({"filter": "event_likelihood_score", "prediction": p, "gte": 60}, {"u1", "u2", "u5"}),
        ({"filter": "event_likelihood_score", "prediction": p, "gt": 60}, {"u1", "u5"}),
        ({"filter": "event_likelihood_score", "prediction": p, "gte": 60, "lt": 75}, {"u2"}),
        ({"filter": "event_likelihood_score", "prediction": p, "gte": 60, "lte": 75}, {"u2", "u5"}),
        ({"filter": "event_likelihood_score", "prediction": p, "lte": 40}, {"u3"}),
        # Unscored users match no score filter, but the negation of one (the plain complement).
        ({"not": {"filter": "event_likelihood_score", "prediction": p, "gte": 60}}, {"u3", "u4", "u6", "u7"}),
        ({"filter": "event_likelihood_score", "prediction": store.p2, "gte": 0}, set()),
    ])


def test_category_filters(store):
    p = store.p1
    check(store, [
        ({"filter": "event_likelihood_category", "prediction": p, "in": ["High"]}, {"u1", "u5"}),
        ({"filter": "event_likelihood_category", "prediction": p, "in": ["Medium", "Low"]}, {"u2", "u3"}),
        ({"filter": "event_likelihood_category", "prediction": p, "in": ["high"]}, set()),
        ({"not": {"filter": "event_likelihood_category", "prediction": p, "in": ["High"]}},
         {"u2", "u3", "u4", "u6", "u7"}),
    ])


def test_attribute_equality_and_sets(store):
    check(store, [
        (attr("country", "eq", "US"), {"u1"}),                   # case-sensitive
        (attr("country", "ne", "US"), {"u2", "u3", "u5"}),       # missing never matches ne
        ({"not": attr("country", "eq", "US")}, EVERYONE - {"u1"}),
        (attr("country", "in", ["US", "FR"]), {"u1", "u2"}),
        (attr("country", "not_in", ["US", "FR"]), {"u3", "u5"}),
        (attr("age", "eq", 30), {"u1"}),                         # the string "30" is not the number 30
        (attr("age", "eq", 30.0), {"u1"}),
        (attr("age", "eq", "30"), {"u3"}),
        (attr("age", "eq", True), {"u6"}),
        (attr("age", "ne", True), {"u1", "u2", "u3", "u5"}),
        (attr("age", "in", [17.5, "30", True]), {"u2", "u3", "u6"}),
        (attr("a.b", "eq", 5), {"u6"}),                          # dotted names are one key
    ])


def test_attribute_ordering_is_type_aware(store):
    check(store, [
        (attr("age", "gt", 20), {"u1", "u5"}),                   # "30" and true are not numbers
        (attr("age", "lte", 17.5), {"u2"}),
        (attr("age", "gte", 17.5), {"u1", "u2", "u5"}),
        (attr("age", "lt", "4"), {"u3"}),                        # strings compare as strings: "30" < "4"
        (attr("country", "gte", "FR"), {"u1", "u2", "u3"}),      # code-point order: "us" > "US" > "FR"
        (attr("country", "lt", "FR"), {"u5"}),
    ])


def test_attribute_presence_and_contains(store):
    check(store, [
        (attr("plan", "exists"), {"u1"}),                        # null counts as absent
        (attr("plan", "not_exists"), EVERYONE - {"u1"}),
        (attr("tags", "contains", "vip"), {"u1", "u6"}),         # list element, or substring of a string
        (attr("tags", "contains", 1), {"u1"}),
        (attr("tags", "contains", "1"), set()),
        (attr("tags", "contains", "VIP"), set()),
        (attr("a.b", "contains", 5), set()),                     # a scalar is not a list
        (attr("email", "contains", "@x.io"), {"u1", "u2"}),
    ])


def test_behaviour_filters(store):
    purchase = {"filter": "performed", "event": "purchase", "within_days": 30}
    check(store, [
        (purchase, {"u1"}),                                      # 30 days back counts; the future does not
        ({**purchase, "min_count": 3}, {"u1"}),
        ({**purchase, "min_count": 3, "within_days": 29}, set()),
        ({**purchase, "min_count": 4}, set()),
        ({"filter": "performed", "event": "purchase"}, {"u1", "u2"}),
        ({"filter": "not_performed", "event": "purchase", "within_days": 30}, EVERYONE - {"u1"}),
        ({"not": purchase}, EVERYONE - {"u1"}),
        ({"filter": "performed", "event": "never-seen"}, set()),
        ({"filter": "not_performed", "event": "never-seen"}, EVERYONE),
    ])


def test_reachability(store):
    check(store, [
        ({"filter": "reachable", "channel": "email"}, {"u1"}),   # u2 said no, u5 empty and unsubscribed
        ({"filter": "reachable", "channel": "push"}, {"u1"}),    # u2 has no token, u5 unsubscribed
        ({"filter": "reachable", "channel": "in_app"}, EVERYONE - {"u5"}),
        ({"filter": "reachable", "channel": "ads"}, {"u1", "u7"}),
    ])


def test_boolean_combinations(store):
    p = store.p1
    check(store, [
        ({"all": [{"filter": "event_likelihood_score", "prediction": p, "gte": 60},
                  attr("country", "in", ["US", "DE"])]}, {"u1", "u5"}),
        ({"any": [{"filter": "event_likelihood_category", "prediction": p, "in": ["High"]},
                  {"filter": "reachable", "channel": "ads"}]}, {"u1", "u5", "u7"}),
        ({"all": [{"not": {"filter": "reachable", "channel": "email"}},
                  {"any": [{"filter": "performed", "event": "purchase"}, attr("age", "gt", 60)]}]}, {"u2", "u5"}),
        ({"any": [{"filter": "event_likelihood_score", "prediction": p, "gte": 80},
                  {"filter": "event_likelihood_category", "prediction": p, "in": ["Low"]}]}, {"u1", "u3"}),
        ({"not": {"not": attr("country", "eq", "US")}}, {"u1"}),
    ])


def test_another_workspaces_prediction_matches_nobody(store):
    """Even unvalidated, a tree can't read another workspace's scores (u4 has a foreign score)."""
    check(store, [
        ({"filter": "event_likelihood_score", "prediction": store.foreign, "gte": 0}, set()),
        ({"all": [{"filter": "event_likelihood_score", "prediction": store.foreign, "gte": 0},
                  attr("country", "exists")]}, set()),
    ])


def test_numbers_beyond_double_precision_do_not_break_queries(engine):
    ws = default_id(engine)
    add_users(engine, ws, {"big": {"n": 10 ** 400}, "small": {"n": 3}})
    with engine.connect() as conn:
        def members(tree):
            return len(conn.execute(compile_audience(tree, ws, NOW)).all())
        assert members(attr("n", "gt", 5)) == 1
        assert members(attr("n", "eq", 3)) == 1
        assert members(attr("n", "lt", 1e300)) == 1


@pytest.mark.postgres
def test_string_order_ignores_the_database_locale(postgres_server):
    """On a database whose collation sorts "a" before "B", strings still compare by code point."""
    name = f"likely_test_icu_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                          "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"))
    try:
        url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 'a' < 'B'")).scalar() is True  # the locale differs from code points
        ws = default_id(engine)
        ids = add_users(engine, ws, {"upper": {"name": "B"}, "lower": {"name": "a"}})
        with engine.connect() as conn:
            found = set(conn.execute(compile_audience(attr("name", "lt", "a"), ws, NOW)).scalars())
        engine.dispose()
        assert found == {ids["upper"]}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
