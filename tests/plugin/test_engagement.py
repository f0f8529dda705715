"""Engagement back (both stores): SendGrid's signed Event Webhook and the host's engagement
events update each outbox row; hard bounces and spam reports suppress the address; results per
tier count delivered, opened, clicked, bounced, complained and unsubscribed.

SendGrid signs with ECDSA P-256 over `timestamp + body`, the public key shown as base64 DER
(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features);
events are shaped as SendGrid documents them, custom_args flattened in
(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event). Host engagement
events use Segment's mobile spec name `Push Notification Tapped`
(https://segment.com/docs/connections/spec/mobile/) and Braze Currents' in-app click type.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update

from plugin.campaigns import definitions, results, runs, schema
from plugin.campaigns.channels import address_hash
from plugin.campaigns.delivery import deliver_outbox
from plugin.store import transaction
from plugin.store.tables import dead_addresses, outbox, outbox_engagement, unsubscribes
from tests.helpers import bearer, post_signed
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

SEND = "https://api.sendgrid.com/v3/mail/send"
NOW = 1_790_000_000
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
SEGMENT_SECRET = "segment-shared-secret-42"


def post_sendgrid(client, events, key=KEY, timestamp="1790000100"):
    body = json.dumps(events)
    signature = base64.b64encode(key.sign(timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))).decode()
    return client.post("/webhooks/sendgrid", data=body, headers={
        "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


@pytest.fixture
def sent(engine, app):
    """An email campaign sent to ann, bob and cat (High tier), with a control group of one."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID},
                    unsubscribe_url="https://shop.example/unsubscribe/{user_id}",
                    inbound={"sendgrid_verification_key": PUBLIC_KEY, "segment_shared_secret": SEGMENT_SECRET})
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(n, {"email": f"{n}@example.com"}) for n in ("ann", "bob", "cat")])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    body = cd.campaign_body(pid, tiers=[cd.email_tier("High", ["High"])])
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, ws, campaign["id"], now_ts=NOW)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "sg-1"})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW) == {"claimed": 3, "sent": 3}
    with engine.connect() as conn:
        keys = {r.user_id: r.idempotency_key for r in conn.execute(select(outbox))}
    by_name = {name: {"user_id": uid, "key": keys[uid]} for name, uid in ids.items()}
    return {"ws": ws, "pid": pid, "campaign": campaign["id"], "run": run["id"], **by_name}


def event(who: dict, name: str, kind: str, ts: int = NOW + 60, **extra) -> dict:
    return {"email": f"{name}@example.com", "timestamp": ts, "event": kind, "sg_event_id": f"{name}-{kind}",
            "sg_message_id": "sg-1.filter0001.16648.5515E0B88.0", "category": "cat facts",
            "likely_idempotency_key": who["key"], "likely_recipient_id": name, **extra}


def engagement(engine) -> dict:
    with engine.connect() as conn:
        return {r.user_id: r for r in conn.execute(select(outbox_engagement))}


def test_sendgrid_events_update_each_message_and_the_results(client, engine, sent):
    ann, bob, cat = sent["ann"], sent["bob"], sent["cat"]
    events = [event(ann, "ann", "processed"), event(ann, "ann", "delivered", NOW + 5),
              event(ann, "ann", "open", NOW + 60, sg_machine_open=False, useragent="Mozilla/4.0"),
              event(ann, "ann", "click", NOW + 90, url="https://shop.example/offer"),
              event(bob, "bob", "click", NOW + 30, url="https://shop.example/offer"),  # images off: no open
              event(cat, "cat", "delivered", NOW + 5), event(cat, "cat", "unsubscribe", NOW + 400)]
    response = post_sendgrid(client, events)
    assert response.status_code == 200, response.json
    assert response.json == {"accepted": 7, "matched": 6, "ignored": 1, "duplicate": False}
    got = engagement(engine)
    assert (got[ann["user_id"]].delivered_ts, got[ann["user_id"]].opened_ts, got[ann["user_id"]].clicked_ts) == \
        (NOW + 5, NOW + 60, NOW + 90)
    assert (got[bob["user_id"]].opened_ts, got[bob["user_id"]].clicked_ts) == (NOW + 30, NOW + 30)
    assert got[cat["user_id"]].unsubscribed_ts == NOW + 400
    with engine.connect() as conn:
        assert {(r.user_id, r.channel) for r in conn.execute(select(unsubscribes))} == {(cat["user_id"], "email")}
        report = results.campaign_results(conn, sent["ws"], sent["campaign"], now_ts=NOW + 3600)
    high = report["tiers"][0]
    assert (high["sent"], high["delivered"], high["opened"], high["clicked"], high["unsubscribed"]) == (3, 3, 2, 2, 1)
    assert high["channels"]["email"]["opened"] == 2
    assert high["converted"] is None  # the prediction's 7-day window has not passed yet
    answer = client.get(f"/v1/campaigns/{sent['campaign']}/results", headers=bearer()).json
    assert answer["tiers"][0]["clicked"] == 2 and answer["tiers"][0]["opened"] == 2
    assert answer["tiers"][0]["converted"] == 0  # measured: the window has passed by the wall clock


def test_an_earlier_event_arriving_late_moves_the_time_back_and_redelivery_changes_nothing(client, engine, sent):
    ann = sent["ann"]
    post_sendgrid(client, [event(ann, "ann", "open", NOW + 500)])
    post_sendgrid(client, [event(ann, "ann", "open", NOW + 100)])
    assert engagement(engine)[ann["user_id"]].opened_ts == NOW + 100
    again = post_sendgrid(client, [event(ann, "ann", "open", NOW + 100)])
    assert again.json["duplicate"] is True


def test_hard_bounces_and_spam_reports_suppress_the_address(client, engine, sent):
    bob, cat, ann = sent["bob"], sent["cat"], sent["ann"]
    post_sendgrid(client, [event(bob, "bob", "bounce", reason="500 unknown recipient", status="5.0.0", type="bounce"),
                           event(ann, "ann", "bounce", reason="421 try later", status="4.0.0", type="blocked"),
                           event(cat, "cat", "spamreport")])
    with engine.connect() as conn:
        dead = {(r.address_hash, r.reason) for r in conn.execute(select(dead_addresses))}
        opted = {(r.user_id, r.channel, r.source) for r in conn.execute(select(unsubscribes))}
    assert dead == {(address_hash("bob@example.com"), "hard_bounce"), (address_hash("cat@example.com"), "spam_report")}
    assert opted == {(cat["user_id"], "email", "spam_report")}
    got = engagement(engine)
    assert got[bob["user_id"]].bounce == "hard" and got[ann["user_id"]].bounce == "soft"
    # The next campaign reaches ann only: bob's address is dead, cat opted out.
    body = cd.campaign_body(sent["pid"], name="Later", tiers=[cd.email_tier("High", ["High"])])
    campaign, _ = definitions.create(engine, sent["ws"], schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, sent["ws"], campaign["id"], now_ts=NOW + 86_400)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "sg-2"})
        assert deliver_outbox(engine, "w1", 100, now_ts=NOW + 86_400) == {"claimed": 2, "sent": 1, "skipped": 1}
        [call] = rsps.calls
    assert [p["to"][0]["email"] for p in json.loads(call.request.body)["personalizations"]] == ["ann@example.com"]
    with engine.connect() as conn:
        later = {r.user_id: (r.status, r.reason) for r in conn.execute(select(outbox).where(outbox.c.run_id == run["id"]))}
    assert later[bob["user_id"]] == ("skipped", "invalid_address")
    assert later[cat["user_id"]] == ("skipped", "unsubscribed")


def test_a_bad_or_missing_signature_is_refused(client, engine, sent):
    other = ec.generate_private_key(ec.SECP256R1())
    forged = post_sendgrid(client, [event(sent["ann"], "ann", "open")], key=other)
    assert forged.status_code == 401 and forged.json["error"]["details"]["reason"] == "bad_signature"
    body = json.dumps([event(sent["ann"], "ann", "open")])
    unsigned = client.post("/webhooks/sendgrid", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert engagement(engine) == {}


def test_a_bad_event_refuses_the_request_and_writes_nothing(client, engine, sent):
    response = post_sendgrid(client, [event(sent["ann"], "ann", "open"),
                                      {**event(sent["bob"], "bob", "click"), "timestamp": "soon"}, "nope"])
    assert response.status_code == 400
    assert set(response.json["error"]["details"]) == {"1", "2"}
    assert "timestamp" in response.json["error"]["details"]["1"]
    assert engagement(engine) == {}


def _push_sent(engine, sent) -> dict:
    """A push campaign to ann whose message the provider accepted."""
    tier = {"name": "High", "band": {"categories": ["High"]}, "channels": [
        {"channel": "push", "connector": "fcm", "template": {"text": "Hi"}},
        {"channel": "in_app", "connector": "braze_in_app", "template": {"text": "Hi"}}]}
    body = cd.campaign_body(sent["pid"], name="Push", tiers=[tier])
    campaign, _ = definitions.create(engine, sent["ws"], schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, sent["ws"], campaign["id"], now_ts=NOW + 1000)
    with transaction(engine) as conn:
        conn.execute(update(outbox).where(outbox.c.run_id == run["id"], outbox.c.status == "pending")
                     .values(status="sent", sent_ts=NOW + 1000))
        keys = {(r.user_id, r.channel): r.idempotency_key
                for r in conn.execute(select(outbox).where(outbox.c.run_id == run["id"]))}
    return {"run": run["id"], "keys": keys}


def test_host_engagement_events_update_the_push_and_in_app_messages(client, engine, sent):
    push = _push_sent(engine, sent)
    ann = sent["ann"]["user_id"]
    tapped = {"type": "track", "userId": "ann", "event": "Push Notification Tapped", "messageId": "m-1",
              "timestamp": "2026-09-21T12:00:00Z",
              "properties": {"campaign": {"name": "Push"}, "likely_idempotency_key": push["keys"][(ann, "push")]}}
    body = json.dumps(tapped)
    signature = hmac.new(SEGMENT_SECRET.encode(), body.encode(), hashlib.sha1).hexdigest()
    answer = client.post("/webhooks/segment", data=body,
                         headers={"Content-Type": "application/json", "X-Signature": signature})
    assert answer.status_code == 200, answer.json
    # A Braze in-app click carries no key of ours: it is the latest in-app message sent to ann.
    clicked = {"events": [{"user_id": "ann", "event": "users.messages.inappmessage.Click",
                           "timestamp": NOW + 2000, "event_id": "iam-1"}]}
    assert post_signed(client, "/webhooks/events", clicked).status_code == 200
    with engine.connect() as conn:
        got = {(r.run_id, r.channel): r for r in conn.execute(select(outbox_engagement))}
    assert got[(push["run"], "push")].opened_ts is not None
    assert got[(push["run"], "in_app")].clicked_ts == NOW + 2000
    with engine.connect() as conn:
        report = results.campaign_results(conn, sent["ws"], definitions_id(engine, "Push"), now_ts=NOW + 3000)
    assert (report["tiers"][0]["opened"], report["tiers"][0]["clicked"]) == (2, 1)


def definitions_id(engine, name: str) -> int:
    from plugin.store.tables import campaigns
    with engine.connect() as conn:
        return conn.execute(select(campaigns.c.id).where(campaigns.c.name == name)).scalar_one()
