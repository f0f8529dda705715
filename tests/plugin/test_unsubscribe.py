"""Unsubscribe done right (both stores): a signed one-click link in every email's headers and
body (`{{ unsubscribe_url }}`), its confirmation page and RFC 8058 POST, the opt-out honoured by
later runs, sends and ads syncs (reason `unsubscribed`), written back to the host, erased with
the user.

SendGrid is faked with its documented answer to /v3/mail/send (202, `X-Message-Id`,
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send); Braze /users/track
answers 201 `{"message": "success"}` (https://www.braze.com/docs/api/endpoints/user_data/post_user_track/)
and takes `email_subscribe: "unsubscribed"` (https://www.braze.com/docs/api/objects_filters/user_attributes_object/);
CleverTap /1/upload answers `{"status": "success", "processed": n, "unprocessed": []}` and takes
`MSG-email: false` (https://developer.clevertap.com/docs/upload-user-profiles-api).
"""
from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
import responses
from sqlalchemy import select, update

from plugin.campaigns import definitions, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.engagement import unsubscribes
from plugin.ingest.writer import erase_users
from plugin.store import transaction
from plugin.store.tables import outbox, outbox_engagement
from plugin.store.tables import unsubscribes as unsubscribes_table
from tests.helpers import API_KEY, WEBHOOK_SECRET
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

SEND = "https://api.sendgrid.com/v3/mail/send"
NOW = 1_790_000_000
PUBLIC = "https://likely.example.com"
BRAZE = {"enabled": True, "rest_endpoint": "https://rest.iad-01.braze.com", "api_key": "braze-rest-key-123",
         "max_attempts": 1}


@pytest.fixture
def app_settings(database_url) -> dict:
    return {"database_url": database_url, "webhook_secrets": [WEBHOOK_SECRET], "api_keys": [API_KEY],
            "public_url": PUBLIC}


@pytest.fixture
def world(engine, app):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID})
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [("ann", {"email": "ann@example.com", "push_tokens": ["tok-ann"]}),
                                    ("bob", {"email": "bob@example.com"})])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    return {"ws": ws, "pid": pid, "ids": ids}


def tier(with_push: bool = False) -> dict:
    result = cd.email_tier("High", ["High"])
    result["channels"][0]["template"] = {
        "subject": "Hi", "text": "Offer inside. Unsubscribe: {{ unsubscribe_url }}",
        "html": '<p>Offer</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'}
    if with_push:
        result["channels"].append({"channel": "push", "connector": "fcm", "template": {"text": "Hi"}})
    return result


def plan(engine, world, name="Spring", with_push=False, now=NOW) -> dict:
    body = cd.campaign_body(world["pid"], name=name, tiers=[tier(with_push)])
    campaign, _ = definitions.create(engine, world["ws"], schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, world["ws"], campaign["id"], now_ts=now)
    return run


def deliver(app, engine, now=NOW) -> tuple[dict, list[dict]]:
    with app.app_context(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "sg-1"})
        counts = deliver_outbox(engine, "w1", 100, now_ts=now)
        bodies = [json.loads(call.request.body) for call in rsps.calls]
    return counts, bodies


def rows(engine, run_id) -> dict:
    with engine.connect() as conn:
        return {(r.user_id, r.channel): r for r in conn.execute(select(outbox).where(outbox.c.run_id == run_id))}


def opt_outs(engine) -> set:
    with engine.connect() as conn:
        return {(r.user_id, r.channel, r.source) for r in conn.execute(select(unsubscribes_table))}


def link_of(bodies, address) -> str:
    for body in bodies:
        for p in body["personalizations"]:
            if p["to"][0]["email"] == address:
                header = p["headers"]["List-Unsubscribe"]
                assert p["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                link = header.strip("<>")
                assert link in p["substitutions"]["-likely_text-"]
                assert f'href="{link}"' in p["substitutions"]["-likely_html-"]
                return link
    raise AssertionError(f"no message to {address}")


def test_each_email_carries_its_own_signed_link_and_one_click_unsubscribes(app, client, engine, world):
    run = plan(engine, world)
    counts, bodies = deliver(app, engine)
    assert counts == {"claimed": 2, "sent": 2}
    ann_link, bob_link = link_of(bodies, "ann@example.com"), link_of(bodies, "bob@example.com")
    assert ann_link != bob_link and ann_link.startswith(f"{PUBLIC}/unsubscribe/")
    path = urlparse(ann_link).path
    page = client.get(path)
    assert page.status_code == 200 and b'<form method="post"' in page.data
    assert opt_outs(engine) == set()  # looking at the page (or a mail scanner following it) changes nothing
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"You are unsubscribed" in done.data
    ann = world["ids"]["ann"]
    assert opt_outs(engine) == {(ann, "email", "one_click")}
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # twice: still one
    assert len(opt_outs(engine)) == 1
    with engine.connect() as conn:
        engaged = conn.execute(select(outbox_engagement)).all()
    assert [(e.run_id, e.user_id, e.channel) for e in engaged] == [(run["id"], ann, "email")]
    assert engaged[0].unsubscribed_ts is not None


def test_a_forged_or_altered_link_is_refused(app, client, engine, world):
    with app.app_context():
        token = unsubscribes.make_token("default", "ann", "email")
    payload, _, signature = token.partition(".")
    with app.app_context():
        other = unsubscribes.make_token("default", "bob", "email").partition(".")[0]
    forged = client.post(f"/unsubscribe/{other}.{signature}", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404 and b"not valid" in forged.data
    assert client.get("/unsubscribe/garbage").status_code == 404
    no_body = client.post(f"/unsubscribe/{token}")
    assert no_body.status_code == 400
    assert opt_outs(engine) == set()


def test_later_runs_skip_the_opted_out_channel_only(app, client, engine, world):
    with app.app_context():
        token = unsubscribes.make_token("default", "ann", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    run = plan(engine, world, with_push=True)
    got = {key: (r.status, r.reason) for key, r in rows(engine, run["id"]).items()}
    ann, bob = world["ids"]["ann"], world["ids"]["bob"]
    assert got[(ann, "email")] == ("skipped", "unsubscribed")
    assert got[(ann, "push")] == ("pending", None)
    assert got[(bob, "email")] == ("pending", None)


def test_an_opt_out_after_planning_is_honoured_at_send_time(app, client, engine, world):
    run = plan(engine, world)
    with app.app_context():
        token = unsubscribes.make_token("default", "bob", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    counts, bodies = deliver(app, engine)
    assert counts == {"claimed": 2, "sent": 1, "skipped": 1}
    assert [p["to"][0]["email"] for b in bodies for p in b["personalizations"]] == ["ann@example.com"]
    assert rows(engine, run["id"])[(world["ids"]["bob"], "email")].reason == "unsubscribed"


def test_erasing_the_user_erases_the_opt_out(app, client, engine, world):
    with app.app_context():
        token = unsubscribes.make_token("default", "ann", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    with transaction(engine) as conn:
        erase_users(conn, world["ws"], ["ann"])
    assert opt_outs(engine) == set()


def test_the_opt_out_is_written_back_to_braze_once(app, client, engine, world):
    cd.set_settings(engine, world["ws"], connectors={"sendgrid": cd.SENDGRID, "braze": BRAZE})
    with app.app_context():
        token = unsubscribes.make_token("default", "ann", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BRAZE['rest_endpoint']}/users/track", status=201,
                 json={"message": "success", "attributes_processed": 1})
        assert unsubscribes.write_back(engine)["written"] == 1
        body = json.loads(rsps.calls[0].request.body)
    assert body["attributes"] == [{"external_id": "ann", "email_subscribe": "unsubscribed"}]
    with responses.RequestsMock():  # nothing left to write: no call at all
        assert unsubscribes.write_back(engine)["written"] == 0


def test_the_opt_out_is_written_back_to_clevertap(app, client, engine, world):
    cd.set_settings(engine, world["ws"], connectors={"clevertap": {
        "enabled": True, "account_id": "ACC-123", "passcode": "clevertap-passcode-1", "max_attempts": 1}})
    with app.app_context():
        token = unsubscribes.make_token("default", "bob", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://api.clevertap.com/1/upload",
                 json={"status": "success", "processed": 1, "unprocessed": []})
        assert unsubscribes.write_back(engine)["written"] == 1
        records = json.loads(rsps.calls[0].request.body)["d"]
    assert records == [{"identity": "bob", "type": "profile", "profileData": {"MSG-email": False}}]


def test_a_failed_write_back_is_retried_later(app, client, engine, world):
    cd.set_settings(engine, world["ws"], connectors={"braze": BRAZE})
    with app.app_context():
        token = unsubscribes.make_token("default", "ann", "email")
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BRAZE['rest_endpoint']}/users/track", status=500,
                 json={"message": "Internal Server Error"})
        assert unsubscribes.write_back(engine)["failed"] == 1
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{BRAZE['rest_endpoint']}/users/track", status=201, json={"message": "success"})
        assert unsubscribes.write_back(engine)["written"] == 1


def test_push_texts_and_sendgrid_dynamic_templates_get_the_link_too(app, engine, world):
    """A SendGrid dynamic template (Handlebars) reads `{{unsubscribe_url}}` from
    `dynamic_template_data` (https://www.twilio.com/docs/sendgrid/ui/sending-email/how-to-send-an-email-with-dynamic-templates)."""
    from plugin.campaigns import messages
    from plugin.campaigns.outbox import claim
    cd.set_settings(engine, world["ws"], connectors={"sendgrid": {**cd.SENDGRID, "template_id": "d-6a1b2c"}})
    push_tier = tier(with_push=True)
    push_tier["channels"][1]["template"] = {"text": "Stop these: {{ unsubscribe_url }}"}
    body = cd.campaign_body(world["pid"], tiers=[push_tier])
    campaign, _ = definitions.create(engine, world["ws"], schema.CampaignInput().load(body))
    runs.start_run(engine, world["ws"], campaign["id"], now_ts=NOW)
    _, claimed = claim(engine, "w1", 100, NOW)
    with app.app_context(), engine.connect() as conn:
        context = messages.load_context(conn, world["ws"], claimed)
        _, ready = messages.prepare(context, claimed, NOW)
    push = next(p.item for p in ready if p.row.channel == "push")
    assert push.unsubscribe_url.startswith(f"{PUBLIC}/unsubscribe/") and push.text == f"Stop these: {push.unsubscribe_url}"
    with app.app_context():
        assert unsubscribes.read_token(push.unsubscribe_url.rsplit("/", 1)[1])[2] == "push"
    # The emails themselves, through SendGrid with a dynamic template:
    with engine.connect() as conn:  # hand the claimed rows back, as an expired lease would
        conn.execute(update(outbox).values(next_attempt_at=NOW, claimed_by=None, claim_expires=None))
        conn.commit()
    _, bodies = deliver(app, engine)
    [sent_body] = bodies
    assert sent_body["template_id"] == "d-6a1b2c"
    for personalization in sent_body["personalizations"]:
        link = personalization["headers"]["List-Unsubscribe"].strip("<>")
        assert personalization["dynamic_template_data"]["unsubscribe_url"] == link
        assert link.startswith(f"{PUBLIC}/unsubscribe/")
