"""Planning runs into the outbox (both stores): keys, skips by reason, control groups, frequency
caps, recurring runs that reach only newly entered users, and the scheduler's job body."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

from plugin.campaigns import definitions, jobs, keys, runs, schema
from plugin.ingest.writer import erase_users
from plugin.store import transaction
from plugin.store.tables import campaigns, outbox, predictions
from tests.plugin import campaign_data as cd

NOW = 1_790_000_000
DAY = 86_400


def create(engine, ws, body) -> int:
    # These campaigns are meant to run on schedule: activated explicitly (the default is paused).
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load({"status": "active", **body}))
    return campaign["id"]


def rows(engine, run_id=None) -> list:
    query = select(outbox).order_by(outbox.c.user_id, outbox.c.channel)
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def reasons(engine, run_id) -> dict[str, str | None]:
    return {(r.user_id, r.channel): (r.reason if r.status == "skipped" else r.status) for r in rows(engine, run_id)}


@pytest.fixture
def people(engine):
    ws = cd.workspace_id(engine)
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [
        ("ok", {"email": "ok@example.com", "push_tokens": ["t-ok"]}),
        ("unsubscribed", {"email": "u@example.com", "unsubscribed": True, "email_consent": False}),
        ("no-consent", {"email": "n@example.com", "email_consent": False, "push_tokens": ["t-n"]}),
        ("no-email", {"push_tokens": []}),
        ("blank-email", {"email": "", "push_consent": False, "push_tokens": ["t-b"]}),
    ])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    return {"ws": ws, "pid": pid, "ids": ids}


def test_each_row_gets_the_uuid5_key_python_computes(engine, people):
    campaign_id = create(engine, people["ws"], cd.campaign_body(people["pid"]))
    run, _ = runs.start_run(engine, people["ws"], campaign_id, now_ts=NOW)
    planned = rows(engine, run["id"])
    assert len(planned) == 5
    for row in planned:
        assert row.idempotency_key == keys.idempotency_key(campaign_id, run["id"], row.user_id, "email")
        assert (row.created_ts, row.next_attempt_at, row.attempts, row.score) == (NOW, NOW, 0, 90.0)


def test_skips_are_rows_with_the_first_reason_that_applies(engine, people):
    ids = people["ids"]
    tier = cd.email_tier("High", ["High"])
    tier["channels"] += [{"channel": "push", "connector": "fcm", "template": {"text": "Hi"}},
                         {"channel": "in_app", "connector": "braze_in_app", "template": {"text": "Hi"}}]
    campaign_id = create(engine, people["ws"], cd.campaign_body(people["pid"], tiers=[tier]))
    run, _ = runs.start_run(engine, people["ws"], campaign_id, now_ts=NOW)
    got = reasons(engine, run["id"])
    assert got[(ids["ok"], "email")] == got[(ids["ok"], "push")] == got[(ids["ok"], "in_app")] == "pending"
    assert got[(ids["unsubscribed"], "email")] == got[(ids["unsubscribed"], "in_app")] == "unsubscribed"
    assert got[(ids["no-consent"], "email")] == "no_consent" and got[(ids["no-consent"], "push")] == "pending"
    assert got[(ids["no-email"], "email")] == got[(ids["no-email"], "push")] == "not_reachable"
    assert got[(ids["no-email"], "in_app")] == "pending"
    assert got[(ids["blank-email"], "email")] == "not_reachable" and got[(ids["blank-email"], "push")] == "no_consent"
    assert run["counts"]["tiers"][0]["targeted"] == 5


def test_the_control_group_is_deterministic_per_user_and_campaign(engine):
    ws = cd.workspace_id(engine)
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com"}) for i in range(400)])
    cd.add_scores(engine, ws, pid, {uid: 80.0 for uid in ids.values()})
    body = cd.campaign_body(pid, tiers=[cd.email_tier("High", ["High"], control_share=0.25)],
                            schedule={"type": "recurring", "every": "day", "start_at": "2026-09-01T00:00:00+00:00"},
                            remessage_after_days=0)
    campaign_id = create(engine, ws, body)
    first, _ = runs.start_run(engine, ws, campaign_id, now_ts=NOW)
    second, _ = runs.start_run(engine, ws, campaign_id, now_ts=NOW + DAY)
    held = [{r.user_id for r in rows(engine, run["id"]) if r.reason == "control"} for run in (first, second)]
    assert held[0] == held[1] == {u for u in ids.values() if keys.in_control(campaign_id, u, 0.25)}
    assert 60 < len(held[0]) < 140  # about a quarter of 400
    other = create(engine, ws, {**body, "name": "Other"})
    third, _ = runs.start_run(engine, ws, other, now_ts=NOW)
    assert {r.user_id for r in rows(engine, third["id"]) if r.reason == "control"} != held[0]


def test_control_is_drawn_only_from_users_who_could_be_messaged(engine, people):
    campaign_id = create(engine, people["ws"], cd.campaign_body(
        people["pid"], tiers=[cd.email_tier("High", ["High"], control_share=0.999999)]))
    run, _ = runs.start_run(engine, people["ws"], campaign_id, now_ts=NOW)
    got = Counter(reasons(engine, run["id"]).values())
    assert got == {"control": 1, "unsubscribed": 1, "no_consent": 1, "not_reachable": 2}


def test_the_frequency_cap_counts_messages_across_campaigns_per_channel(engine, people):
    cd.set_settings(engine, people["ws"], frequency_caps={"email": {"max_messages": 1, "period": "day"},
                                                          "*": {"max_messages": 5, "period": "week"}})
    ok = people["ids"]["ok"]
    first = create(engine, people["ws"], cd.campaign_body(people["pid"], name="First"))
    runs.start_run(engine, people["ws"], first, now_ts=NOW)
    tier = cd.email_tier("High", ["High"])
    tier["channels"].append({"channel": "push", "connector": "fcm", "template": {"text": "Hi"}})
    second = create(engine, people["ws"], cd.campaign_body(people["pid"], name="Second", tiers=[tier]))
    run, _ = runs.start_run(engine, people["ws"], second, now_ts=NOW + 3600)
    got = reasons(engine, run["id"])
    assert got[(ok, "email")] == "frequency_cap" and got[(ok, "push")] == "pending"
    third = create(engine, people["ws"], cd.campaign_body(people["pid"], name="Third"))
    later, _ = runs.start_run(engine, people["ws"], third, now_ts=NOW + DAY + 1)  # the day has rolled on
    assert reasons(engine, later["id"])[(ok, "email")] == "pending"


def test_a_recurring_run_reaches_only_users_new_to_the_campaign(engine, people):
    ws, pid = people["ws"], people["pid"]
    body = cd.campaign_body(pid, tiers=[cd.email_tier("High", ["High"], control_share=0.5)],
                            schedule={"type": "recurring", "every": "day", "start_at": "2026-09-21T00:00:00+00:00"})
    campaign_id = create(engine, ws, body)
    first, _ = runs.start_run(engine, ws, campaign_id, now_ts=NOW)
    newcomer = cd.add_users(engine, ws, [("new", {"email": "new@example.com"})])["new"]
    cd.add_scores(engine, ws, pid, {newcomer: 99.0})
    second, created = runs.start_run(engine, ws, campaign_id, now_ts=NOW + DAY)
    assert created and second["run_key"] != first["run_key"]
    written = {r.user_id for r in rows(engine, second["id"])}
    first_rows = rows(engine, first["id"])
    reached = {r.user_id for r in first_rows if r.status != "skipped" or r.reason == "control"}
    assert newcomer in written and not written & reached
    counted = second["counts"]["tiers"][0]
    messaged = sum(1 for r in first_rows if r.status != "skipped")
    assert counted["already_messaged"] == messaged
    assert counted["already_in_control"] == len(reached) - messaged
    assert counted["targeted"] == len(written) + len(reached)


def test_remessage_after_days_lets_users_back_in_once_that_long_has_passed(engine, people):
    ws, pid = people["ws"], people["pid"]
    campaign_id = create(engine, ws, cd.campaign_body(pid, schedule={
        "type": "recurring", "every": "day", "start_at": "2026-09-01T00:00:00+00:00"}, remessage_after_days=7))
    runs.start_run(engine, ws, campaign_id, now_ts=NOW)
    soon, _ = runs.start_run(engine, ws, campaign_id, now_ts=NOW + 2 * DAY)
    assert soon["counts"]["tiers"][0]["already_messaged"] == 1  # "ok" was messaged two days ago
    later, _ = runs.start_run(engine, ws, campaign_id, now_ts=NOW + 8 * DAY)
    assert later["counts"]["tiers"][0]["already_messaged"] == 0
    assert reasons(engine, later["id"])[(people["ids"]["ok"], "email")] == "pending"


def test_the_scheduler_plans_each_due_slot_once(engine, people):
    ws, pid = people["ws"], people["pid"]
    daily = create(engine, ws, cd.campaign_body(pid, name="Daily", schedule={
        "type": "recurring", "every": "day", "start_at": "2026-09-21T00:00:00+00:00"}))
    later = create(engine, ws, cd.campaign_body(pid, name="Later", schedule={
        "type": "at", "at": "2026-10-01T09:00:00+00:00"}))
    start = 1_790_035_200  # 2026-09-21T00:00:00Z
    assert jobs.run_campaigns(engine, now_ts=start + 60) == {"due": 1, "planned": 1, "existing": 0, "paused": 0}
    assert jobs.run_campaigns(engine, now_ts=start + 120)["due"] == 0  # next slot tomorrow
    assert jobs.run_campaigns(engine, now_ts=start + DAY + 5)["planned"] == 1
    with engine.connect() as conn:
        state = {r.id: (r.status, r.next_run_at) for r in conn.execute(select(campaigns))}
    assert state[daily] == ("active", start + 2 * DAY)
    assert state[later][0] == "active"
    assert jobs.run_campaigns(engine, now_ts=1_790_845_200)["planned"] == 2  # Oct 1st 9:00: both due
    with engine.connect() as conn:
        assert conn.execute(select(campaigns.c.status).where(campaigns.c.id == later)).scalar() == "completed"


def test_a_manual_run_in_a_slot_is_the_slots_run(engine, people):
    ws, pid = people["ws"], people["pid"]
    campaign_id = create(engine, ws, cd.campaign_body(pid, schedule={
        "type": "recurring", "every": "day", "start_at": "2026-09-21T00:00:00+00:00"}))
    manual, _ = runs.start_run(engine, ws, campaign_id, now_ts=1_790_035_200 + 30)
    assert manual["run_key"] == "slot:1790035200"
    assert jobs.run_campaigns(engine, now_ts=1_790_035_200 + 60)["due"] == 0  # the slot has had its run
    assert jobs.run_campaigns(engine, now_ts=1_790_035_200 + DAY)["planned"] == 1
    # Two schedulers racing on one slot: the second finds the run and moves the schedule on.
    with transaction(engine) as conn:
        conn.execute(update(campaigns).values(next_run_at=1_790_035_200 + DAY))
    assert jobs.run_campaigns(engine, now_ts=1_790_035_200 + DAY + 9) == {"due": 1, "planned": 0, "existing": 1,
                                                                           "paused": 0}
    assert jobs.run_campaigns(engine, now_ts=1_790_035_200 + DAY + 10)["due"] == 0


def test_the_scheduler_pauses_a_campaign_whose_prediction_was_archived(engine, people):
    campaign_id = create(engine, people["ws"], cd.campaign_body(people["pid"]))
    with transaction(engine) as conn:
        conn.execute(update(predictions).values(status="archived"))
    assert jobs.run_campaigns(engine, now_ts=2_000_000_000)["paused"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(campaigns.c.status).where(campaigns.c.id == campaign_id)).scalar() == "paused"


def test_erasure_deletes_a_users_outbox_rows(engine, people):
    campaign_id = create(engine, people["ws"], cd.campaign_body(people["pid"]))
    run, _ = runs.start_run(engine, people["ws"], campaign_id, now_ts=NOW)
    with transaction(engine) as conn:
        assert erase_users(conn, people["ws"], ["ok"]) == 1
    assert people["ids"]["ok"] not in {r.user_id for r in rows(engine, run["id"])}
    assert len(rows(engine, run["id"])) == 4


def test_the_settings_campaigns_read_are_described_as_json_schema():
    import jsonschema

    from plugin.campaigns.channels import SETTINGS_SCHEMA, frequency_caps
    validator = jsonschema.Draft202012Validator({"type": "object", "properties": SETTINGS_SCHEMA})
    good = {"unsubscribe_url": "https://shop.example/u/{user_id}",
            "frequency_caps": {"email": {"max_messages": 2, "period": "week"}, "*": {"max_messages": 5}}}
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({"frequency_caps": {"sms": {"max_messages": 1}}}))
    assert list(validator.iter_errors({"unsubscribe_url": "http://insecure.example"}))
    assert frequency_caps.__doc__ and "rolling window" in frequency_caps.__doc__
