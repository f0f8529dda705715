"""Point-in-time features and labels, on SQLite and PostgreSQL."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from plugin.predictions import features
from plugin.predictions.eligibility import eligible_users
from plugin.predictions.reader import read_chunks
from plugin.store.tables import users
from tests.plugin.predictions_fixtures import DAY, END, event, new_prediction, write

T = END - 30 * DAY  # the cutoff in these tests


def table(engine, prediction, cutoff=T, horizon=None, spec=None, chunk_users=2):
    """Features (and labels up to `horizon`) per host user id, read in small chunks."""
    with engine.connect() as conn:
        spec = spec or features.build_spec(conn, prediction, cutoff)
        ids = dict(conn.execute(select(users.c.id, users.c.external_id)).all())
    rows = {}
    for chunk in read_chunks(engine, prediction, spec, cutoff, horizon or cutoff, chunk_users):
        computed = features.compute(chunk, spec, cutoff, label_end_ts=horizon)
        for i, uid in enumerate(chunk.user_ids):
            rows[ids[int(uid)]] = {"x": computed.matrix[i], "eligible": bool(computed.has_history[i]),
                                   "label": None if computed.labels is None else int(computed.labels[i])}
    return spec, rows


def value(spec, row, key):
    keys = [c["key"] for c in features.columns(spec)]
    return row["x"][keys.index(key)]


def type_key(spec, name, window):
    type_id = next(t["id"] for t in spec["event_types"] if t["name"] == name)
    return f"events:{type_id}:{window}d"


def test_counts_recency_activity_and_gaps_as_of_the_cutoff(engine):
    write(engine, [
        event("a", "view", T - 86_399), event("a", "view", T), event("a", "view", T - DAY),  # 1-day window is (T-1d, T]
        event("a", "purchase", T - 10 * DAY, value=30), event("a", "view", T - 40 * DAY),
        event("a", "view", T + 1),                                                            # after T: invisible
        event("b", "view", T - 100 * DAY),                                                    # not seen in 90 days
        event("c", "view", T + DAY),                                                          # no history at T
    ], users=[{"user_id": "a", "attributes": {"country": "DE", "email_consent": True, "email": "a@x.io"}},
              {"user_id": "b", "attributes": {"country": "US", "email_consent": False}}])
    spec, rows = table(engine, new_prediction(engine))
    a, b = rows["a"], rows["b"]
    assert value(spec, a, type_key(spec, "view", 1)) == 2
    assert value(spec, a, type_key(spec, "view", 7)) == 3
    assert value(spec, a, type_key(spec, "view", 90)) == 4
    assert value(spec, a, type_key(spec, "purchase", 30)) == 1 and value(spec, a, type_key(spec, "purchase", 7)) == 0
    assert value(spec, a, "days_since_last_event") == 0
    assert value(spec, a, "days_since_first_event") == 40
    assert value(spec, a, "days_since_last_goal") == 10
    assert value(spec, a, "events_total") == 5
    assert value(spec, a, "active_days_30") == 3   # T, T-1 day, T-10 days (T-86399 s is the same day as T)
    assert value(spec, a, "active_days_90") == 4
    assert value(spec, a, "gap_max_days") == 30
    assert value(spec, a, "gap_mean_days") == pytest.approx(40 / 4)
    assert np.isnan(value(spec, b, "days_since_last_goal"))
    assert value(spec, b, "days_since_last_event") == 100
    assert a["eligible"] and b["eligible"] and not rows["c"]["eligible"]  # any history before T, however old
    country = next(x for x in spec["attributes"] if x["name"] == "country")
    assert country["values"][int(value(spec, a, "attribute:country"))] == "DE"
    assert value(spec, a, "attribute:email_consent") == 1 and value(spec, b, "attribute:email_consent") == 0
    assert value(spec, a, "attribute:email") == 1 and value(spec, b, "attribute:email") == 0


def test_features_do_not_leak_events_after_the_cutoff(engine):
    past = [event(f"u{i}", name, T - k * 3 * DAY - i * 600, value=k * 10)
            for i in range(6) for k, name in enumerate(["view", "cart", "purchase", "view", "search"])]
    write(engine, past)
    prediction = new_prediction(engine, goal_condition={"property": "value", "op": "gt", "value": 15})
    spec, before = table(engine, prediction, horizon=T + 14 * DAY)
    with engine.connect() as conn:
        eligible_before = set(conn.execute(eligible_users(conn, prediction, T)).scalars())

    # The future arrives: goal events, new event types, a new user — all after T.
    future = [event(f"u{i}", name, T + s, value=100) for i in range(6) for s, name in
              [(1, "purchase"), (3600, "view"), (DAY, "brand_new_event"), (40 * DAY, "purchase")]]
    write(engine, future + [event("newcomer", "view", T + 60)])
    with engine.connect() as conn:
        assert features.build_spec(conn, prediction, T) == spec
        assert set(conn.execute(eligible_users(conn, prediction, T)).scalars()) == eligible_before
    _, after = table(engine, prediction, horizon=T + 14 * DAY, spec=spec)  # events after T are read (as labels)
    for user, row in before.items():
        np.testing.assert_array_equal(row["x"], after[user]["x"])
        assert row["eligible"] == after[user]["eligible"]
    assert not after["newcomer"]["eligible"]


def test_label_is_the_goal_in_the_window_after_the_cutoff(engine):
    window = 14 * DAY
    write(engine, [
        event("at_cutoff", "purchase", T),               # a feature, not a label
        event("first_second", "purchase", T + 1),
        event("last_second", "purchase", T + window),
        event("too_late", "purchase", T + window + 1),
        event("browser", "view", T + 5),
    ] + [event(u, "view", T - DAY) for u in ("at_cutoff", "first_second", "last_second", "too_late", "browser")])
    _, rows = table(engine, new_prediction(engine), horizon=T + window)
    assert {u: r["label"] for u, r in rows.items()} == {"at_cutoff": 0, "first_second": 1, "last_second": 1,
                                                         "too_late": 0, "browser": 0}


def test_goal_condition_decides_labels_and_goal_features(engine):
    write(engine, [
        event("big", "purchase", T + DAY, value=20.5), event("exact", "purchase", T + DAY, value=20),
        event("text", "purchase", T + DAY, value="25"), event("none", "purchase", T + DAY),
        event("big", "purchase", T - DAY, value=99), event("exact", "purchase", T - DAY, value=5),
    ] + [event(u, "view", T - DAY) for u in ("big", "exact", "text", "none")])
    prediction = new_prediction(engine, goal_condition={"property": "value", "op": "gt", "value": 20})
    spec, rows = table(engine, prediction, horizon=T + 14 * DAY)
    assert {u: r["label"] for u, r in rows.items()} == {"big": 1, "exact": 0, "text": 0, "none": 0}
    assert value(spec, rows["big"], "goal_events:7d") == 1 and value(spec, rows["exact"], "goal_events:7d") == 0
    assert value(spec, rows["exact"], type_key(spec, "purchase", 7)) == 1   # still a purchase event
    assert value(spec, rows["big"], "days_since_last_goal") == 1
    assert np.isnan(value(spec, rows["exact"], "days_since_last_goal"))


@pytest.mark.parametrize("condition, matching", [
    ({"property": "currency", "op": "eq", "value": "EUR"}, {"eur"}),
    ({"property": "currency", "op": "ne", "value": "EUR"}, {"usd", "gbp"}),  # a missing property never matches
    ({"property": "currency", "op": "in", "value": ["EUR", "GBP"]}, {"eur", "gbp"}),
    ({"property": "gift", "op": "eq", "value": True}, {"gift"}),
    ({"property": "value", "op": "lte", "value": 10}, {"cheap"}),
])
def test_condition_operators(engine, condition, matching):
    write(engine, [event("eur", "purchase", T + 60, currency="EUR"), event("usd", "purchase", T + 60, currency="USD"),
                   event("gbp", "purchase", T + 60, currency="GBP"), event("gift", "purchase", T + 60, gift=True),
                   event("cheap", "purchase", T + 60, value=10), event("plain", "purchase", T + 60)]
          + [event(u, "view", T - 60) for u in ("eur", "usd", "gbp", "gift", "cheap", "plain")])
    _, rows = table(engine, new_prediction(engine, goal_condition=condition), horizon=T + DAY)
    assert {u for u, r in rows.items() if r["label"]} == matching


def test_default_eligibility_is_every_user_with_history_and_matches_the_sql_definition(engine):
    write(engine, [event(f"u{i}", "view", T - i * 70 * DAY) for i in range(20)] + [event("later", "view", T + 5)])
    prediction = new_prediction(engine)
    _, rows = table(engine, prediction, chunk_users=3)
    with engine.connect() as conn:
        sql = set(conn.execute(select(users.c.external_id).where(
            users.c.id.in_(eligible_users(conn, prediction, T)))).scalars())
    # Years-old history still counts (a buyer back after a long pause); no history yet does not.
    assert {u for u, r in rows.items() if r["eligible"]} == sql == {f"u{i}" for i in range(20)}


def test_other_workspaces_events_are_not_features(engine):
    from plugin import workspaces
    other = workspaces.ensure(engine, "other")
    write(engine, [event("a", "view", T - DAY)])
    write(engine, [event("a", "view", T - DAY)] * 1 + [event("a", "purchase", T - 2 * DAY)], workspace_id=other.id)
    spec, rows = table(engine, new_prediction(engine))
    assert list(rows) == ["a"] and value(spec, rows["a"], "events_total") == 1


def property_key(spec, event_name, prop, what):
    found = next(p for p in spec["properties"] if p["event"] == event_name and p["property"] == prop)
    return f"property:{found['event_type_id']}:{prop}:{what}"


def test_numeric_event_properties_are_sums_means_and_last_values(engine):
    write(engine, [
        event("a", "purchase", T - 100 * DAY, amount=50.0, quantity=1),
        event("a", "purchase", T - 20 * DAY, amount=30.0, quantity=2),
        event("a", "purchase", T - 2 * DAY, amount=10.0, quantity=3, sku="A-1"),
        event("a", "purchase", T + DAY, amount=999.0, quantity=9),             # after T: invisible
        event("a", "view", T - DAY, seconds=12),
        event("b", "view", T - DAY, seconds=40), event("b", "view", T - 3 * DAY, seconds=20),
    ])
    spec, rows = table(engine, new_prediction(engine), horizon=T + 14 * DAY)
    a, b = rows["a"], rows["b"]
    assert value(spec, a, property_key(spec, "purchase", "amount", "sum:7d")) == 10
    assert value(spec, a, property_key(spec, "purchase", "amount", "sum:30d")) == 40
    assert value(spec, a, property_key(spec, "purchase", "amount", "mean:30d")) == 20
    assert value(spec, a, property_key(spec, "purchase", "amount", "sum:all")) == 90
    assert value(spec, a, property_key(spec, "purchase", "amount", "last")) == 10
    assert value(spec, a, property_key(spec, "purchase", "quantity", "mean:all")) == 2
    assert value(spec, b, property_key(spec, "view", "seconds", "mean:7d")) == 30   # other events too
    assert value(spec, b, property_key(spec, "purchase", "amount", "sum:30d")) == 0
    assert np.isnan(value(spec, b, property_key(spec, "purchase", "amount", "mean:30d")))  # no purchase: no mean
    assert np.isnan(value(spec, b, property_key(spec, "purchase", "amount", "last")))
    labels = {c["key"]: c["label"] for c in features.columns(spec)}
    assert labels[property_key(spec, "purchase", "amount", "sum:30d")] == "purchase amount, total in the last 30 days"
    assert not any(p["property"] == "sku" for p in spec["properties"])  # text is not a number


def test_identifier_properties_and_attributes_are_never_features(engine):
    people = [{"user_id": f"u{i}", "attributes": {
        "zip_code": 10_000 + i % 7, "postal": f"SW1A {i % 9}AA", "customerId": 500_000 + i, "plan": "gold",
        "contact": f"person{i}@example.com", "mobile_number": f"+4479460{i:05d}", "age": 20 + i % 30,
        "account_ref": f"R{i}"}} for i in range(60)]
    rows = [event(f"u{i}", "purchase", T - DAY, order_id=900_000 + i, order_number=i * 7 + 100_000,
                  total=19.5 + i % 5, quantity=1 + i % 3, transaction=7_000_000 + i * 13) for i in range(60)]
    write(engine, rows, users=people)
    with engine.connect() as conn:
        spec = features.build_spec(conn, new_prediction(engine), T)
    assert sorted(p["property"] for p in spec["properties"]) == ["quantity", "total"]
    assert sorted(a["name"] for a in spec["attributes"]) == ["age", "plan"]


def test_churn_labels_active_users_who_stop_and_matches_the_sql_audience(engine):
    window = 14 * DAY
    write(engine, [
        event("stays", "session", T - DAY), event("stays", "session", T + DAY),        # active, comes back
        event("leaves", "session", T - 3 * DAY), event("leaves", "view", T + DAY),     # active, no session after
        event("lapsed", "session", T - 30 * DAY), event("lapsed", "session", T + DAY),  # not active at T
        event("browser", "view", T - DAY),                                              # never had a session
    ])
    prediction = new_prediction(engine, goal_event="session", goal_kind="churn")
    _, rows = table(engine, prediction, horizon=T + window)
    eligible = {u: r["label"] for u, r in rows.items() if r["eligible"]}
    assert eligible == {"stays": 0, "leaves": 1}           # 1 = churned
    with engine.connect() as conn:
        sql = set(conn.execute(select(users.c.external_id).where(
            users.c.id.in_(eligible_users(conn, prediction, T)))).scalars())
    assert sql == set(eligible)
