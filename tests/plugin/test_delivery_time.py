"""Delivery time (both stores): a campaign sends at a local time on each user's own clock (their
`time_zone` attribute) and never inside the workspace's quiet hours; the planner writes each
row's due time, and the outbox hands out nothing before it."""
from __future__ import annotations

from datetime import datetime

import pytest
from marshmallow import ValidationError
from sqlalchemy import select

from plugin.campaigns import definitions, runs, schema
from plugin.campaigns.outbox import claim
from plugin.store.tables import outbox
from tests.plugin import campaign_data as cd

NOW = 1_790_000_000  # 2026-09-21 14:13:20 UTC: 16:13 in Paris, 10:13 in New York, 23:13 in Tokyo
PEOPLE = [("paris", {"email": "p@example.com", "time_zone": "Europe/Paris"}),
          ("new-york", {"email": "n@example.com", "time_zone": "America/New_York"}),
          ("tokyo", {"email": "t@example.com", "timezone": "Asia/Tokyo"}),
          ("nowhere", {"email": "x@example.com"}),
          ("mars", {"email": "m@example.com", "time_zone": "Mars/Olympus_Mons"})]


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


@pytest.fixture
def world(engine):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID})
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, PEOPLE)
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    return {"ws": ws, "pid": pid, "names": {uid: name for name, uid in ids.items()}}


def plan(engine, world, **schedule) -> dict[str, int]:
    body = cd.campaign_body(world["pid"], tiers=[cd.email_tier("High", ["High"])],
                            schedule={"type": "once", **schedule})
    campaign, _ = definitions.create(engine, world["ws"], schema.CampaignInput().load(body))
    run, _ = runs.start_run(engine, world["ws"], campaign["id"], now_ts=NOW)
    with engine.connect() as conn:
        return {world["names"][r.user_id]: r.next_attempt_at
                for r in conn.execute(select(outbox).where(outbox.c.run_id == run["id"]))}


def claimed(engine, world, at: int) -> set[str]:
    _, rows = claim(engine, "w1", 100, at, lease_seconds=7 * 86_400)  # held: not handed out twice
    return {world["names"][r.user_id] for r in rows}


def test_a_local_send_time_is_due_on_each_users_clock(engine, world):
    due = plan(engine, world, local_time="18:00")
    assert due == {"paris": ts("2026-09-21T18:00:00+02:00"), "new-york": ts("2026-09-21T18:00:00-04:00"),
                   "tokyo": ts("2026-09-22T18:00:00+09:00"),  # 18:00 has passed in Tokyo: tomorrow
                   "nowhere": ts("2026-09-21T18:00:00+00:00"), "mars": ts("2026-09-21T18:00:00+00:00")}
    assert claimed(engine, world, NOW) == set()
    assert claimed(engine, world, ts("2026-09-21T18:00:00+02:00")) == {"paris"}
    assert claimed(engine, world, ts("2026-09-21T18:00:00+00:00")) == {"nowhere", "mars"}


def test_quiet_hours_hold_messages_until_they_end_on_the_users_clock(engine, world):
    cd.set_settings(engine, world["ws"], quiet_hours={"start": "21:00", "end": "08:00", "time_zone": "Europe/Paris"})
    due = plan(engine, world)
    assert due["tokyo"] == ts("2026-09-22T08:00:00+09:00")  # 23:13 there: quiet
    assert due["paris"] == due["new-york"] == due["nowhere"] == due["mars"] == NOW
    assert claimed(engine, world, NOW) == {"paris", "new-york", "nowhere", "mars"}
    assert claimed(engine, world, ts("2026-09-22T08:00:00+09:00") - 1) == set()
    assert claimed(engine, world, ts("2026-09-22T08:00:00+09:00")) == {"tokyo"}


def test_a_local_time_inside_quiet_hours_waits_for_their_end(engine, world):
    cd.set_settings(engine, world["ws"], quiet_hours={"start": "21:00", "end": "08:00", "time_zone": "Europe/Paris"})
    due = plan(engine, world, local_time="22:30")
    assert due["paris"] == due["nowhere"] == ts("2026-09-22T08:00:00+02:00")  # no zone: the workspace's
    assert due["new-york"] == ts("2026-09-22T08:00:00-04:00")
    # 22:30 has passed in Tokyo (23:13): the next 22:30 is tomorrow's, held to the morning after.
    assert due["tokyo"] == ts("2026-09-23T08:00:00+09:00")


def test_quiet_hours_within_one_day_and_none_at_all(engine, world):
    cd.set_settings(engine, world["ws"], quiet_hours={"start": "12:00", "end": "17:00"})  # zone: UTC
    due = plan(engine, world)
    assert due["nowhere"] == ts("2026-09-21T17:00:00+00:00") and due["paris"] == ts("2026-09-21T17:00:00+02:00")
    assert due["new-york"] == due["tokyo"] == NOW


def test_a_local_time_must_be_a_clock_time():
    with pytest.raises(ValidationError) as error:
        schema.CampaignInput().load(cd.campaign_body(1, schedule={"type": "once", "local_time": "25:00"}))
    assert "local_time" in error.value.messages["schedule"]


def test_quiet_hours_are_checked_when_saved(client, app, engine):
    from sqlalchemy import update

    from plugin.store import transaction
    from plugin.store.tables import workspaces
    from tests.helpers import bearer
    with transaction(engine) as conn:  # whatever an earlier test left in the default workspace's form
        conn.execute(update(workspaces).where(workspaces.c.slug == "default")
                     .values(settings={}, secret_settings=None))
    bad = client.patch("/v1/settings", headers=bearer(),
                       json={"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Europe/Pariss"}})
    assert bad.status_code == 400 and "quiet_hours.time_zone" in bad.json["error"]["details"]
    late = client.patch("/v1/settings", headers=bearer(), json={"quiet_hours": {"start": "24:00", "end": "08:00"}})
    assert late.status_code == 400 and "quiet_hours.start" in late.json["error"]["details"]
    good = client.patch("/v1/settings", headers=bearer(),
                        json={"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Europe/Paris"}})
    assert good.status_code == 200, good.json
