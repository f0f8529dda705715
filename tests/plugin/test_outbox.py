"""The outbox state machine and the delivery worker (both stores), HTTP faked with `responses`."""
from __future__ import annotations

import json
import threading

import pytest
import responses
from sqlalchemy import select, update

from plugin.campaigns import breaker, definitions, runs, schema
from plugin.campaigns.channels import address_hash
from plugin.campaigns.delivery import deliver_outbox
from plugin.campaigns.outbox import MAX_ATTEMPTS, claim, release_held, settle
from plugin.store import transaction
from plugin.store.tables import dead_addresses, outbox, users
from tests.connectors.google_keys import service_account_json, token_ok
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

SEND = "https://api.sendgrid.com/v3/mail/send"
FCM = "https://fcm.googleapis.com/v1/projects/likely-test/messages:send"
NOW = 1_790_000_000
NO_SLEEP = {"sleep": lambda s: None}


@pytest.fixture
def world(engine):
    """Twelve users (u0..u11) in one High tier of an email campaign, planned at NOW."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID},
                    unsubscribe_url="https://shop.example/unsubscribe/{user_id}")
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com", "first_name": f"N{i}"})
                                    for i in range(12)])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    return {"ws": ws, "pid": pid, "ids": ids}


def plan(engine, world, tiers=None, name="Spring") -> dict:
    body = cd.campaign_body(world["pid"], name=name, tiers=tiers or [cd.email_tier("High", ["High"])])
    campaign, _ = definitions.create(engine, world["ws"], schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, world["ws"], campaign["id"], now_ts=NOW)
    return run


def state(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r.user_id: r for r in conn.execute(select(outbox))}


def accepted(rsps, message_id="sg-1", n=1):
    for _ in range(n):
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": message_id})


def test_a_pass_sends_due_rows_in_provider_batches_and_records_them(engine, world):
    run = plan(engine, world)
    with responses.RequestsMock() as rsps:
        accepted(rsps, n=2)
        assert deliver_outbox(engine, "w1", 8, now_ts=NOW) == {"claimed": 8, "sent": 8}
        assert deliver_outbox(engine, "w1", 8, now_ts=NOW) == {"claimed": 4, "sent": 4}
        assert deliver_outbox(engine, "w1", 8, now_ts=NOW) == {"claimed": 0}
        body = json.loads(rsps.calls[0].request.body)
    rows = state(engine)
    assert {r.status for r in rows.values()} == {"sent"}
    assert all(r.provider_id == "sg-1" and r.sent_ts == NOW and r.attempts == 1 and r.claimed_by is None
               for r in rows.values())
    first = body["personalizations"][0]
    row = rows[world["ids"][first["to"][0]["email"].split("@")[0]]]
    assert first["custom_args"] == {"likely_idempotency_key": row.idempotency_key,
                                    "likely_recipient_id": first["to"][0]["email"].split("@")[0]}
    assert first["headers"]["List-Unsubscribe"].startswith("<https://shop.example/unsubscribe/u")
    assert run["counts"]["tiers"][0]["targeted"] == 12


def test_a_failed_send_is_retried_later_with_backoff_then_sent(engine, world):
    plan(engine, world)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=503, json={"errors": [{"message": "not available"}]})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "failed": 12}
    rows = state(engine)
    first_retry = {r.next_attempt_at for r in rows.values()}
    assert all(NOW + 15 <= t <= NOW + 30 for t in first_retry)  # 30 s base, equal jitter
    assert {(r.status, r.attempts) for r in rows.values()} == {("failed", 1)}
    assert "http_503" in next(iter(rows.values())).reason
    assert deliver_outbox(engine, "w1", 100, now_ts=NOW + 10) == {"claimed": 0}  # not yet due
    with responses.RequestsMock() as rsps:
        accepted(rsps)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW + 31) == {"claimed": 12, "sent": 12}
    assert {(r.status, r.attempts) for r in state(engine).values()} == {("sent", 2)}


def test_a_message_that_keeps_failing_is_dead_after_the_last_attempt(engine, world):
    plan(engine, world)
    now = NOW
    with responses.RequestsMock() as rsps:
        for _ in range(MAX_ATTEMPTS):
            rsps.add(responses.POST, SEND, status=503, json={"errors": [{"message": "unavailable"}]})
        for attempt in range(1, MAX_ATTEMPTS + 1):
            breaker_free(engine)
            counts = deliver_outbox(engine, "w1", 100, now_ts=now)
            assert counts == ({"claimed": 12, "failed": 12} if attempt < MAX_ATTEMPTS else
                              {"claimed": 12, "dead": 12})
            now = max(r.next_attempt_at for r in state(engine).values()) + 1
    row = next(iter(state(engine).values()))
    assert row.status == "dead" and row.reason.startswith(f"gave_up_after_{MAX_ATTEMPTS}_attempts: http_503")


def breaker_free(engine):
    """Keep the circuit breaker out of a test about one message's attempts."""
    from plugin.store.tables import connector_breakers
    with transaction(engine) as conn:
        conn.execute(update(connector_breakers).values(failures=0, open_until=None))


def test_a_rejected_message_is_dead_with_the_providers_reason(engine, world):
    plan(engine, world)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=413, json={"errors": [{"message": "payload too large"}]})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "dead": 12}
    assert next(iter(state(engine).values())).reason == "http_413: payload too large"


def test_a_configuration_error_holds_messages_until_released(engine, world):
    plan(engine, world)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=401, json={"errors": [{"message": "The provided authorization "
                                                                     "grant is invalid, expired, or revoked"}]})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "held": 12}
    rows = state(engine)
    assert {(r.status, r.attempts) for r in rows.values()} == {("held", 0)}
    with engine.connect() as conn:
        health = breaker.status(conn, world["ws"], NOW)
    assert health[0]["connector"] == "sendgrid" and health[0]["last_error"].startswith("configuration: http_401")
    assert deliver_outbox(engine, "w1", 100, now_ts=NOW + 3600) == {"claimed": 0}  # held is not due
    assert release_held(engine, world["ws"], "sendgrid", NOW) == 12
    with responses.RequestsMock() as rsps:
        accepted(rsps)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "sent": 12}


def test_a_connector_not_enabled_holds_its_messages(engine, world):
    cd.set_settings(engine, world["ws"], connectors={"sendgrid": {**cd.SENDGRID, "enabled": False}})
    plan(engine, world)
    assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "held": 12}
    assert next(iter(state(engine).values())).reason == "connector_not_enabled: sendgrid"


def test_consent_withdrawn_after_planning_is_honoured_at_delivery(engine, world):
    plan(engine, world)
    with transaction(engine) as conn:
        conn.execute(update(users).where(users.c.id == world["ids"]["u1"])
                     .values(attributes={"email": "u1@example.com", "email_consent": False}))
        conn.execute(update(users).where(users.c.id == world["ids"]["u2"])
                     .values(attributes={"email": "u2@example.com", "unsubscribed": True}))
    with responses.RequestsMock() as rsps:
        accepted(rsps)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "skipped": 2, "sent": 10}
        sent_to = {p["to"][0]["email"] for p in json.loads(rsps.calls[0].request.body)["personalizations"]}
    rows = state(engine)
    assert (rows[world["ids"]["u1"]].reason, rows[world["ids"]["u2"]].reason) == ("no_consent", "unsubscribed")
    assert "u1@example.com" not in sent_to and "u2@example.com" not in sent_to


def test_a_template_that_fails_for_one_user_dead_letters_only_that_message(engine, world):
    tier = cd.email_tier("High", ["High"])
    tier["channels"][0]["template"]["text"] = "{{ 100 / user.divisor }}"
    with transaction(engine) as conn:
        conn.execute(update(users).where(users.c.id != world["ids"]["u0"])
                     .values(attributes={"email": "x@example.com", "divisor": 4}))
        conn.execute(update(users).where(users.c.id == world["ids"]["u0"])
                     .values(attributes={"email": "x0@example.com", "divisor": 0}))
    plan(engine, world, tiers=[tier])
    with responses.RequestsMock() as rsps:
        accepted(rsps)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "dead": 1, "sent": 11}
    assert state(engine)[world["ids"]["u0"]].reason.startswith("template_error: text: line 1: ZeroDivisionError")


def test_an_expired_claim_is_reclaimed_and_the_late_worker_cannot_overwrite_it(engine, world):
    plan(engine, world)
    token, claimed = claim(engine, "crashed", 100, NOW, lease_seconds=60)  # and then the worker dies
    assert len(claimed) == 12
    assert deliver_outbox(engine, "w2", 100, now_ts=NOW + 59) == {"claimed": 0}
    with responses.RequestsMock() as rsps:
        accepted(rsps, "sg-2")
        assert deliver_outbox(engine, "w2", 100, now_ts=NOW + 60) == {"claimed": 12, "sent": 12}
    from plugin.campaigns.outbox import Outcome
    late = [Outcome(r.run_id, r.user_id, r.channel, "failed", "late", next_attempt_at=NOW) for r in claimed]
    with transaction(engine) as conn:
        assert settle(conn, token, late, NOW + 61) == 0
    assert {(r.status, r.provider_id, r.attempts) for r in state(engine).values()} == {("sent", "sg-2", 2)}


def test_concurrent_claims_never_share_a_row(engine, world):
    plan(engine, world)
    got: dict[str, list] = {}

    def take(name):
        got[name] = claim(engine, name, 5, NOW)[1]
    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [r.idempotency_key for rows in got.values() for r in rows]
    assert len(keys) == len(set(keys)) == 12


def test_the_circuit_breaker_pauses_a_failing_connector_and_resumes_after_the_cool_down(engine, world):
    plan(engine, world)
    with responses.RequestsMock() as rsps:
        for _ in range(breaker.THRESHOLD):
            rsps.add(responses.POST, SEND, status=503, json={"errors": [{"message": "down"}]})
        now = NOW
        for _ in range(breaker.THRESHOLD):
            assert deliver_outbox(engine, "w1", 2, now_ts=now)["failed"] == 2
    with engine.connect() as conn:
        (health,) = breaker.status(conn, world["ws"], now)
    assert health["state"] == "open" and health["open_until"] == now + breaker.COOL_DOWN_SECONDS
    assert deliver_outbox(engine, "w1", 100, now_ts=now + 30) == {"claimed": 0}  # paused, nothing claimed
    with responses.RequestsMock() as rsps:
        accepted(rsps)
        # After the cool-down the next call is the probe; its success closes the breaker.
        assert deliver_outbox(engine, "w1", 100, now_ts=now + breaker.COOL_DOWN_SECONDS + 60)["sent"] == 12
    with engine.connect() as conn:
        (health,) = breaker.status(conn, world["ws"], now)
    assert health["state"] == "closed" and health["failures"] == 0
    assert {r.status for r in state(engine).values()} == {"sent"}


def test_when_the_breaker_opens_the_rest_of_the_pass_waits_without_spending_an_attempt(engine, world):
    cd.set_settings(engine, world["ws"], connectors={"meta_custom_audience": {
        "enabled": True, "access_token": "EAAB-meta-token-123456", "max_attempts": 1}})
    for audience in ("111", "222"):
        plan(engine, world, name=f"ads {audience}", tiers=[{"name": "High", "band": {"categories": ["High"]},
              "channels": [{"channel": "ads", "connector": "meta_custom_audience", "audience_id": audience}]}])
    with transaction(engine) as conn:
        for _ in range(breaker.THRESHOLD - 1):
            breaker.record(conn, world["ws"], "meta_custom_audience", failed=True, error="down", now_ts=NOW)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://graph.facebook.com/v25.0/111/users", status=500,
                 json={"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1,
                                 "is_transient": True, "fbtrace_id": "A1"}})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 24, "failed": 12, "paused": 12}
    with engine.connect() as conn:
        waiting = conn.execute(select(outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.status)
                               .where(outbox.c.connector == "meta_custom_audience")).all()
    assert sorted(set(waiting))[0] == (0, NOW + breaker.COOL_DOWN_SECONDS, "pending")


def test_a_failed_probe_reopens_the_breaker_for_longer(engine, world):
    plan(engine, world)
    with transaction(engine) as conn:
        for _ in range(breaker.THRESHOLD):
            breaker.record(conn, world["ws"], "sendgrid", failed=True, error="down", now_ts=NOW)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=503, json={"errors": [{"message": "still down"}]})
        probe_at = NOW + breaker.COOL_DOWN_SECONDS
        assert deliver_outbox(engine, "w1", 3, now_ts=probe_at)["failed"] == 3
    with engine.connect() as conn:
        (health,) = breaker.status(conn, world["ws"], probe_at)
    assert health["open_until"] == probe_at + 2 * breaker.COOL_DOWN_SECONDS


def push_world(engine, world, tokens: dict[str, list[str]]):
    cd.set_settings(engine, world["ws"], connectors={"fcm": {
        "enabled": True, "project_id": "likely-test", "service_account_json": service_account_json(),
        "max_attempts": 1}})
    with transaction(engine) as conn:
        for name, uid in world["ids"].items():
            conn.execute(update(users).where(users.c.id == uid).values(attributes={"push_tokens": tokens.get(name, [])}))
    tier = {"name": "High", "band": {"categories": ["High"]}, "channels": [
        {"channel": "push", "connector": "fcm", "template": {"subject": "Hi", "text": "{{ offer.discount_percent }}%"}}]}
    return plan(engine, world, tiers=[tier])


def unregistered():
    return {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
                      "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                   "errorCode": "UNREGISTERED"}]}}


def not_a_valid_token():
    """FCM's documented answer for a token it cannot use (Example 2 of
    https://firebase.google.com/docs/cloud-messaging/error-codes)."""
    return {"error": {"code": 400, "message": "The registration token is not a valid FCM registration token",
                      "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                   "errorCode": "INVALID_ARGUMENT"}]}}


@pytest.mark.parametrize("answer", [(404, unregistered), (400, not_a_valid_token)],
                         ids=["UNREGISTERED", "INVALID_ARGUMENT"])
def test_an_invalid_push_token_is_retired_and_the_next_device_is_tried(engine, world, answer):
    status, body = answer
    push_world(engine, world, {"u0": ["old-token", "dead-token"], "u1": ["only-token"]})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        token_ok(rsps)
        rsps.add(responses.POST, FCM, status=status, json=body())
        rsps.add(responses.POST, FCM, status=status, json=body())
        first = deliver_outbox(engine, "w1", 100, now_ts=NOW, connector_options=NO_SLEEP)
        rsps.add(responses.POST, FCM, json={"name": "projects/likely-test/messages/1"})
        second = deliver_outbox(engine, "w1", 100, now_ts=NOW, connector_options=NO_SLEEP)
        tokens_tried = [json.loads(c.request.body)["message"]["token"] for c in rsps.calls
                        if c.request.url == FCM]
    assert first == {"claimed": 2, "skipped": 1, "pending": 1}  # u1's only token is dead; u0 has another
    assert second == {"claimed": 1, "sent": 1}
    assert sorted(tokens_tried[:2]) == ["dead-token", "only-token"] and tokens_tried[2] == "old-token"
    rows = state(engine)
    assert rows[world["ids"]["u1"]].reason == "invalid_push_token"
    assert rows[world["ids"]["u0"]].status == "sent"
    with engine.connect() as conn:
        attributes = dict(conn.execute(select(users.c.id, users.c.attributes)).all())
        retired = set(conn.execute(select(dead_addresses.c.address_hash)).scalars())
    assert attributes[world["ids"]["u0"]]["push_tokens"] == ["old-token"]
    assert attributes[world["ids"]["u1"]]["push_tokens"] == []
    assert retired == {address_hash("dead-token"), address_hash("only-token")}


def test_a_retired_token_sent_again_by_the_host_is_never_used(engine, world):
    push_world(engine, world, {"u0": ["dead-token"]})
    with transaction(engine) as conn:
        conn.execute(dead_addresses.insert().values(workspace_id=world["ws"], channel="push", user_id=world["ids"]["u0"],
                                                    address_hash=address_hash("dead-token"), created_at=cd.utcnow()))
    assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 1, "skipped": 1}
    assert state(engine)[world["ids"]["u0"]].reason == "invalid_push_token"


def test_ads_rows_add_users_to_the_tiers_audience(engine, world):
    cd.set_settings(engine, world["ws"], connectors={"meta_custom_audience": {
        "enabled": True, "access_token": "EAAB-meta-token-123456", "max_attempts": 1}})
    tier = {"name": "High", "band": {"categories": ["High"]}, "channels": [
        {"channel": "ads", "connector": "meta_custom_audience", "audience_id": "23850000000001"}]}
    plan(engine, world, tiers=[tier])
    url = "https://graph.facebook.com/v25.0/23850000000001/users"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, url, json={"audience_id": "23850000000001", "session_id": 77,
                                            "num_received": 12, "num_invalid_entries": 0})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 12, "sent": 12}
        payload = json.loads(rsps.calls[0].request.body)["payload"]
    assert len(payload["data"]) == 12 and "EMAIL" in payload["schema"]


def test_gender_and_date_of_birth_attributes_feed_metas_keys(engine, world):
    """The documented attribute names (docs/ads-identifiers.md): `gender` -> GEN, `date_of_birth`
    (YYYY-MM-DD) -> DOBY/DOBM/DOBD, hashed per Meta
    (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences)."""
    from connectors.hashing import sha256_hex
    with transaction(engine) as conn:
        conn.execute(update(users).where(users.c.id == world["ids"]["u0"]).values(attributes={
            "email": "u0@example.com", "gender": "F", "date_of_birth": "1991-12-24"}))
    cd.set_settings(engine, world["ws"], connectors={"meta_custom_audience": {
        "enabled": True, "access_token": "EAAB-meta-token-123456", "max_attempts": 1}})
    tier = {"name": "High", "band": {"categories": ["High"]}, "channels": [
        {"channel": "ads", "connector": "meta_custom_audience", "audience_id": "23850000000001"}]}
    plan(engine, world, tiers=[tier])
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://graph.facebook.com/v25.0/23850000000001/users",
                 json={"audience_id": "23850000000001", "session_id": 77, "num_received": 12,
                       "num_invalid_entries": 0})
        deliver_outbox(engine, "w1", 100, now_ts=NOW)
        payload = json.loads(rsps.calls[0].request.body)["payload"]
    rows = [dict(zip(payload["schema"], row)) for row in payload["data"]]
    [u0] = [r for r in rows if r["EMAIL"] == sha256_hex("u0@example.com")]
    assert (u0["GEN"], u0["DOBY"], u0["DOBM"], u0["DOBD"]) == (
        sha256_hex("f"), sha256_hex("1991"), sha256_hex("12"), sha256_hex("24"))


def test_each_workspace_delivers_with_its_own_settings(engine, world):
    plan(engine, world)
    other = cd.workspace_id(engine, "other")
    cd.set_settings(engine, other, connectors={"sendgrid": {**cd.SENDGRID, "api_key": "SG.other-key-xyz"}},
                    unsubscribe_url="https://other.example/u/{user_id}")
    pid = cd.add_prediction(engine, other)
    ids = cd.add_users(engine, other, [("o1", {"email": "o1@example.com"})])
    cd.add_scores(engine, other, pid, {ids["o1"]: 90.0})
    plan(engine, {"ws": other, "pid": pid}, name="Theirs")
    with responses.RequestsMock() as rsps:
        accepted(rsps, n=2)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 13, "sent": 13}
        auth = {c.request.headers["Authorization"]: len(json.loads(c.request.body)["personalizations"])
                for c in rsps.calls}
    assert auth == {"Bearer SG.test-key-abcdef": 12, "Bearer SG.other-key-xyz": 1}
