"""Signed ingestion webhooks, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from plugin import workspaces
from plugin.api.security import SIGNATURE_REASONS
from plugin.store.tables import event_types, events, users
from tests.helpers import OTHER_SECRET, WEBHOOK_SECRET, post_signed, signed_headers


def event(user="u1", name="purchase", ts="2026-11-01T10:00:00Z", **extra):
    return {"user_id": user, "event": name, "timestamp": ts, **extra}


def count(engine, table, **where):
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return conn.execute(query).scalar()


def attributes_of(engine, external_id):
    with engine.connect() as conn:
        return conn.execute(select(users.c.attributes).where(users.c.external_id == external_id)).scalar()


def test_signed_event_batch_is_written(client, engine):
    batch = {"events": [event("u1"), event("u2", "view", "2026-11-02T08:30:00+02:00", properties={"sku": "A1"}),
                        event(3, "view", 1_793_000_000)]}
    response = post_signed(client, "/webhooks/events", batch)
    assert response.status_code == 200, response.json
    assert response.json == {"accepted": 3, "written": 3, "duplicate": False}
    assert count(engine, events) == 3
    assert count(engine, users) == 3
    with engine.connect() as conn:
        stored = conn.execute(select(events.c.ts, events.c.properties).join(
            event_types, event_types.c.id == events.c.event_type_id).where(event_types.c.name == "view")
            .order_by(events.c.ts)).all()
    # +02:00 is converted to UTC; zone-less and epoch forms are UTC.
    assert stored[0] == (1_793_000_000, None)
    assert stored[1].ts == int(datetime(2026, 11, 2, 6, 30, tzinfo=timezone.utc).timestamp())
    assert stored[1].properties == {"sku": "A1"}


def test_redelivered_webhook_id_changes_nothing(client, engine):
    batch = {"events": [event("u1"), event("u2")]}
    first = post_signed(client, "/webhooks/events", batch, webhook_id="msg_same")
    again = post_signed(client, "/webhooks/events", batch, webhook_id="msg_same")
    assert first.json["duplicate"] is False and again.status_code == 200
    assert again.json == {"accepted": 2, "written": 2, "duplicate": True}
    assert count(engine, events) == 2


def test_same_events_under_a_new_webhook_id_are_not_duplicated(client, engine):
    batch = {"events": [event("u1"), event("u1", "view", event_id="e-1")]}
    post_signed(client, "/webhooks/events", batch)
    second = post_signed(client, "/webhooks/events", batch)
    assert second.json["written"] == 0
    assert count(engine, events) == 2


def test_identical_events_in_one_batch_are_all_kept_and_redelivery_adds_none(client, engine):
    batch = {"events": [event("u1"), event("u1"), event("u1", "view")]}
    assert post_signed(client, "/webhooks/events", batch).json["written"] == 3
    assert post_signed(client, "/webhooks/events", batch).json["written"] == 0
    assert count(engine, events) == 3


def test_old_history_is_accepted(client, engine):
    batch = {"events": [event("u1", ts="1998-06-30T00:00:00Z"), event("u2", ts=0)]}
    assert post_signed(client, "/webhooks/events", batch).status_code == 200
    refused = post_signed(client, "/webhooks/events", {"events": [event("u3", ts="1969-07-20T20:17:00Z")]})
    assert refused.status_code == 400 and count(engine, events) == 2


def test_a_bad_row_rejects_the_whole_batch_with_per_row_errors(client, engine):
    batch = {"events": [event("u1"), event("", "view"), event("u3", ts="yesterday"), {"user_id": "u4"}]}
    response = post_signed(client, "/webhooks/events", batch)
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "validation_failed"
    rows = error["details"]["events"]
    assert set(rows) == {"1", "2", "3"}
    assert "user_id" in rows["1"] and "timestamp" in rows["2"]
    assert set(rows["3"]) == {"event", "timestamp"}
    assert count(engine, events) == 0 and count(engine, users) == 0


def test_rejected_batch_can_be_redelivered_under_the_same_id_once_fixed(client, engine):
    bad = post_signed(client, "/webhooks/events", {"events": [event(ts="nope")]}, webhook_id="msg_fix")
    good = post_signed(client, "/webhooks/events", {"events": [event()]}, webhook_id="msg_fix")
    assert bad.status_code == 400 and good.status_code == 200 and good.json["written"] == 1


@pytest.mark.parametrize("mutate, reason", [
    (lambda h: {**h, "webhook-signature": "v1,AAAA"}, "no_matching_signature"),
    (lambda h: {k: v for k, v in h.items() if k != "webhook-signature"}, "missing_headers"),
    (lambda h: {**h, "webhook-signature": "garbage"}, "malformed_signature"),
    (lambda h: {**h, "webhook-id": "msg_other"}, "no_matching_signature"),
    (lambda h: {**h, "webhook-timestamp": "yesterday"}, "malformed_timestamp"),
    (lambda h: {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 600)}, "stale_timestamp"),
])
def test_bad_signatures_are_refused(client, engine, mutate, reason):
    """The refusal names our own reason code, whatever words the signing library uses."""
    body = json.dumps({"events": [event()]})
    response = client.post("/webhooks/events", data=body, headers=mutate(signed_headers(body)))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert response.json["error"]["details"] == {"reason": reason}
    assert response.json["error"]["message"].endswith(SIGNATURE_REASONS[reason])
    assert count(engine, events) == 0


def test_tampered_body_is_refused(client, engine):
    body = json.dumps({"events": [event()]})
    headers = signed_headers(body)
    response = client.post("/webhooks/events", data=body.replace("u1", "u9"), headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("skew, accepted", [(timedelta(minutes=-6), False), (timedelta(minutes=6), False),
                                            (timedelta(minutes=-4), True), (timedelta(minutes=4), True)])
def test_timestamp_tolerance_is_five_minutes(client, skew, accepted):
    response = post_signed(client, "/webhooks/events", {"events": [event()]},
                           timestamp=datetime.now(timezone.utc) + skew)
    assert (response.status_code == 200) is accepted


def test_secret_rotation_accepts_old_and_new_secrets(app_settings, database_url):
    from plugin import create_app
    app = create_app({**app_settings, "webhook_secrets": [WEBHOOK_SECRET, OTHER_SECRET]})
    client = app.test_client()
    assert post_signed(client, "/webhooks/events", {"events": [event("a")]}, secret=WEBHOOK_SECRET).status_code == 200
    assert post_signed(client, "/webhooks/events", {"events": [event("b")]}, secret=OTHER_SECRET).status_code == 200
    app.extensions["likely_engine"].dispose()


def test_several_signatures_in_one_header(client):
    body = json.dumps({"events": [event()]})
    headers = signed_headers(body, secret=WEBHOOK_SECRET, webhook_id="msg_multi")
    stale = signed_headers(body, secret=OTHER_SECRET, webhook_id="msg_multi")["webhook-signature"]
    headers["webhook-signature"] = f"{stale} {headers['webhook-signature']}"
    assert client.post("/webhooks/events", data=body, headers=headers).status_code == 200


def test_json_only(client):
    body = "user_id,event\nu1,view"
    headers = {**signed_headers(body), "Content-Type": "text/csv"}
    response = client.post("/webhooks/events", data=body, headers=headers)
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


def test_invalid_json_is_a_400(client):
    response = post_signed(client, "/webhooks/events", '{"events": [')
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("payload", [[], {"events": {}}, {"events": []}, {"events": [5]}, "null", {"other": 1}])
def test_wrong_shapes_are_400_not_500(client, payload):
    response = post_signed(client, "/webhooks/events", payload if isinstance(payload, str) else json.dumps(payload))
    assert response.status_code == 400, response.json


def test_body_size_limit_is_413(app_settings):
    from plugin import create_app
    app = create_app({**app_settings, "max_body_bytes": 2048})
    response = post_signed(app.test_client(), "/webhooks/events",
                           {"events": [event(f"user-{i}") for i in range(100)]})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"
    app.extensions["likely_engine"].dispose()


def test_batch_row_limit_is_413(app_settings, engine):
    from plugin import create_app
    app = create_app({**app_settings, "max_batch_rows": 5})
    response = post_signed(app.test_client(), "/webhooks/events", {"events": [event(f"u{i}") for i in range(6)]})
    assert response.status_code == 413 and response.json["error"]["details"] == {"limit": 5, "received": 6}
    assert count(engine, events) == 0
    app.extensions["likely_engine"].dispose()


def test_user_attributes_later_values_win_and_null_removes(client, engine):
    first = {"users": [{"user_id": "u1", "email": "Ana@Example.com ", "country": "fr", "plan": "free",
                        "push_tokens": ["tok-1"], "email_consent": True}]}
    assert post_signed(client, "/webhooks/users", first).status_code == 200
    second = {"users": [{"user_id": "u1", "attributes": {"plan": "pro", "ltv": 12.5}},
                        {"user_id": "u1", "country": None, "language": "fr-FR"}]}
    response = post_signed(client, "/webhooks/users", second)
    assert response.json == {"accepted": 2, "written": 1, "duplicate": False}
    assert attributes_of(engine, "u1") == {"email": "Ana@Example.com", "plan": "pro", "ltv": 12.5,
                                           "push_tokens": ["tok-1"], "email_consent": True, "language": "fr-FR"}


@pytest.mark.parametrize("row, field", [
    ({"user_id": "u1", "email": "not-an-email"}, "email"),
    ({"user_id": "u1", "email_consent": "maybe"}, "email_consent"),
    ({"user_id": "u1", "country": "France"}, "country"),
    ({"user_id": "u1", "nested": {"a": 1}}, "nested"),
    ({"user_id": "u1", "bad name!": 1}, "bad name!"),
    ({"email": "a@b.co"}, "user_id"),
])
def test_user_attribute_validation(client, engine, row, field):
    response = post_signed(client, "/webhooks/users", {"users": [{"user_id": "ok"}, row]})
    assert response.status_code == 400
    assert field in response.json["error"]["details"]["users"]["1"]
    assert count(engine, users) == 0


def test_erasure_removes_the_user_and_everything_about_them(client, engine):
    post_signed(client, "/webhooks/users", {"users": [{"user_id": "gone", "email": "g@x.io"},
                                                      {"user_id": "kept", "email": "k@x.io"}]})
    post_signed(client, "/webhooks/events", {"events": [event("gone"), event("gone", "view"), event("kept")]})
    response = post_signed(client, "/webhooks/users/delete", {"user_ids": ["gone", "never-seen"]})
    assert response.status_code == 200 and response.json["written"] == 1
    assert count(engine, users) == 1 and attributes_of(engine, "gone") is None
    assert count(engine, events) == 1
    assert attributes_of(engine, "kept") == {"email": "k@x.io"}


def test_workspace_paths_and_isolation(app, client, engine):
    other = workspaces.ensure(engine, "acme")
    workspaces.add_webhook_secret(engine, other, OTHER_SECRET)
    # The acme secret writes to acme only.
    assert post_signed(client, "/webhooks/acme/events", {"events": [event("a1")]},
                       secret=OTHER_SECRET).status_code == 200
    # Neither secret crosses over.
    assert post_signed(client, "/webhooks/acme/events", {"events": [event("x")]},
                       secret=WEBHOOK_SECRET).status_code == 401
    assert post_signed(client, "/webhooks/events", {"events": [event("y")]},
                       secret=OTHER_SECRET).status_code == 401
    assert post_signed(client, "/webhooks/default/events", {"events": [event("d1")]}).status_code == 200
    default = workspaces.ensure(engine, "default")
    assert count(engine, events, workspace_id=other.id) == 1
    assert count(engine, events, workspace_id=default.id) == 1
    # Same host user id in two workspaces: two users, and erasure in one leaves the other.
    post_signed(client, "/webhooks/acme/events", {"events": [event("d1")]}, secret=OTHER_SECRET)
    post_signed(client, "/webhooks/acme/users/delete", {"user_ids": ["d1"]}, secret=OTHER_SECRET)
    assert count(engine, events, workspace_id=default.id) == 1


def test_unknown_workspace_is_401_without_revealing_it(client):
    response = post_signed(client, "/webhooks/nobody/events", {"events": [event()]})
    assert response.status_code == 401 and "nobody" not in response.get_data(as_text=True)


def test_every_webhook_route_refuses_another_workspaces_signature(app, client, engine):
    """Generic over the URL map, so endpoints added later are covered too."""
    other = workspaces.ensure(engine, "acme")
    workspaces.add_webhook_secret(engine, other, OTHER_SECRET)
    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/webhooks/<workspace>/")]
    assert routes, "no per-workspace webhook routes found"
    for rule in routes:
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            path = rule.rule.replace("<workspace>", "acme")
            body = json.dumps({})
            response = client.open(path, method=method, data=body,
                                   headers=signed_headers(body, secret=WEBHOOK_SECRET))
            assert response.status_code == 401, (method, path, response.status_code)


def test_signing_matches_the_standard_webhooks_test_vector():
    """The published example, so our host-style signing is checked against the spec, not itself."""
    from tests.helpers import signed_headers
    body = '{"test": 2432232314}'
    headers = signed_headers(body, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
                             timestamp=datetime.fromtimestamp(1614265330, timezone.utc))
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


def test_erasure_reaches_every_table_that_refers_to_users(client, engine):
    """Scores (and any later table with a user_id column) are deleted with the user."""
    from sqlalchemy import insert

    from plugin.store.tables import predictions, scores
    from plugin.store.types import utcnow
    post_signed(client, "/webhooks/events", {"events": [event("gone"), event("kept")]})
    with engine.begin() as conn:
        ids = dict(conn.execute(select(users.c.external_id, users.c.id)).all())
        ws = workspaces.get(conn, "default").id
        pid = conn.execute(insert(predictions).values(
            workspace_id=ws, name="p", goal_event="purchase", window_days=14, categories={},
            schedule="daily", retrain_days=15, status="active", created_at=utcnow(), updated_at=utcnow())
            .returning(predictions.c.id)).scalar()
        conn.execute(insert(scores), [{"workspace_id": ws, "prediction_id": pid, "user_id": uid, "score": 50.0,
                                       "category": "Medium", "model_id": 1, "scored_at": 0} for uid in ids.values()])
    post_signed(client, "/webhooks/users/delete", {"user_ids": ["gone"]})
    with engine.connect() as conn:
        assert list(conn.execute(select(scores.c.user_id)).scalars()) == [ids["kept"]]
