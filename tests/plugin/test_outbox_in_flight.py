"""No message twice: rows are marked in flight before their request; after a crash, or an answer
that leaves it open whether the provider took the message, a per-connector policy settles them.

SendGrid's v3 Mail Send takes no idempotency key, so a resent request is a second email
(https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send); its error table gives
500 "Internal server error" — the request may have been processed — beside 429 and the 4xx
(https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors), error
bodies `{"errors": [{"field", "message"}]}`. A Standard Webhooks receiver de-duplicates on
`webhook-id` (https://www.standardwebhooks.com/, "Idempotency"); the signed webhook in
per-recipient mode sends our idempotency key as that id.
"""
from __future__ import annotations

import threading

import pytest
import responses
from sqlalchemy import select

from plugin.campaigns import definitions, results, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.campaigns.outbox import claim, mark_in_flight, recover_in_flight
from plugin.store import transaction
from plugin.store.tables import outbox
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

SEND = "https://api.sendgrid.com/v3/mail/send"
HOOK = "https://hooks.shop.example/likely"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_790_000_000
LEASE = 30


def make_world(engine, connectors: dict, channel: dict, users: int = 6) -> dict:
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors=connectors, unsubscribe_url="https://shop.example/u/{user_id}")
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com"}) for i in range(users)])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    tier = {**cd.email_tier("High", ["High"]), "channels": [channel]}
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(cd.campaign_body(pid, tiers=[tier])))
    runs.start_run(engine, ws, campaign["id"], now_ts=NOW)
    return {"ws": ws, "campaign": campaign["id"]}


@pytest.fixture
def email_world(engine):
    return make_world(engine, {"sendgrid": cd.SENDGRID}, cd.email_tier("High", ["High"])["channels"][0])


@pytest.fixture
def webhook_world(engine):
    channel = {"channel": "webhook", "connector": "webhook", "template": {"text": "{{ offer.discount_percent }}"}}
    return make_world(engine, {"webhook": {"enabled": True, "url": HOOK, "secret": WHSEC, "max_attempts": 1}},
                      channel)


def rows(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox)))


def crash_mid_request(engine, resend_if_crashed: bool) -> list:
    """What a worker killed while its request is in flight leaves behind: claimed rows, marked."""
    token, claimed = claim(engine, "victim", 100, NOW, lease_seconds=LEASE)
    with transaction(engine) as conn:
        mark_in_flight(conn, token, claimed, resend_if_crashed=resend_if_crashed)
    return claimed


def test_rows_are_marked_in_flight_and_committed_before_their_request(engine, email_world):
    seen: list[set] = []

    def provider(request):
        # Read from another connection while the request is at the provider.
        seen.append({r.status for r in rows(engine)})
        return 202, {"X-Message-Id": "sg-1"}, ""

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, SEND, callback=provider)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 6, "sent": 6}
    assert seen == [{"sending"}]
    assert {r.status for r in rows(engine)} == {"sent"}


def test_a_crashed_email_request_is_settled_unknown_and_never_sent_again(engine, email_world):
    crash_mid_request(engine, resend_if_crashed=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, SEND, status=202)
        # Before the lease ends the worker may still be alive: nothing is decided.
        assert deliver_outbox(engine, "w2", 100, now_ts=NOW + LEASE - 1) == {"claimed": 0}
        assert deliver_outbox(engine, "w2", 100, now_ts=NOW + LEASE) == {"claimed": 0, "unknown": 6}
        assert deliver_outbox(engine, "w2", 100, now_ts=NOW + 10 * LEASE) == {"claimed": 0}
        assert len(rsps.calls) == 0
    assert {(r.status, r.reason) for r in rows(engine)} == {("unknown", "worker_crashed_during_request")}
    with engine.connect() as conn:
        [tier] = results.campaign_results(conn, email_world["ws"], email_world["campaign"])["tiers"]
    assert tier["unknown"] == 6 and tier["channels"]["email"]["unknown"] == 6 and tier["sent"] == 0


def test_a_crashed_per_recipient_webhook_is_resent_under_the_same_webhook_id(engine, webhook_world):
    crash_mid_request(engine, resend_if_crashed=True)
    keys = {r.idempotency_key for r in rows(engine)}
    with responses.RequestsMock() as rsps:
        for _ in keys:
            rsps.add(responses.POST, HOOK, status=204)
        counts = deliver_outbox(engine, "w2", 100, now_ts=NOW + LEASE)
        ids = {call.request.headers["webhook-id"] for call in rsps.calls}
    assert counts == {"claimed": 6, "resent_after_crash": 6, "sent": 6}
    assert ids == keys  # the receiver drops whichever of these it already had
    assert {r.status for r in rows(engine)} == {"sent"}


def test_the_delivery_pass_records_the_connectors_policy_when_it_marks(engine, webhook_world):
    """The webhook in per-recipient mode de-duplicates; in batch mode its id depends on how the
    batch was cut, so a crashed batch is `unknown`."""
    marked: list[set] = []

    def receiver(request):
        marked.append({r.reason for r in rows(engine)})
        return 204, {}, ""

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, HOOK, callback=receiver)
        deliver_outbox(engine, "w1", 1, now_ts=NOW)
    cd.set_settings(engine, webhook_world["ws"], connectors={"webhook": {
        "enabled": True, "url": HOOK, "secret": WHSEC, "mode": "batch", "max_attempts": 1}})
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, HOOK, callback=receiver)
        deliver_outbox(engine, "w1", 5, now_ts=NOW)
    assert "in_flight: resend_if_crashed" in marked[0]
    assert "in_flight: unknown_if_crashed" in marked[1]


def test_an_ambiguous_provider_answer_is_settled_unknown_not_retried(engine, email_world):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=500, json={"errors": [{"message": "An error occurred"}]})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 6, "unknown": 6}
        assert len(rsps.calls) == 1
    assert {r.status for r in rows(engine)} == {"unknown"}
    assert all(r.reason.startswith("provider_answer_unknown: http_500") for r in rows(engine))
    with responses.RequestsMock() as rsps:  # and no later pass sends them again
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW + 86_400) == {"claimed": 0}


def test_an_ambiguous_answer_from_a_deduplicating_destination_is_retried(engine, webhook_world):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=502)
        assert deliver_outbox(engine, "w1", 1, now_ts=NOW) == {"claimed": 1, "failed": 1}
    [row] = [r for r in rows(engine) if r.attempts]
    assert row.status == "failed" and row.next_attempt_at > NOW  # queued again, not unknown


def test_the_lease_is_renewed_while_a_request_is_slow(engine, email_world):
    """A short lease is safe because the worker renews it: rows in a slow request are never
    taken for a crashed worker's while it is alive."""
    renewed = threading.Event()
    decided_early: list[dict] = []

    def slow_provider(request):
        for _ in range(600):  # until the heartbeat (every lease/3 s) has pushed the lease on
            if min(r.claim_expires for r in rows(engine)) > NOW + 3:
                renewed.set()
                break
            threading.Event().wait(0.05)
        decided_early.append(recover_in_flight(engine, NOW + 3))
        return 202, {"X-Message-Id": "sg-1"}, ""

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, SEND, callback=slow_provider)
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW, lease_seconds=3) == {"claimed": 6, "sent": 6}
    assert renewed.is_set()
    assert decided_early == [{"resent_after_crash": 0, "unknown": 0}]
    assert {r.status for r in rows(engine)} == {"sent"}
