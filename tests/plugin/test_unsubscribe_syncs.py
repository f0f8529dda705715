"""Opt-outs of ads are honoured by segment syncs to ad platforms (both stores): an opted-out user
is never added, and a mirror destination removes one an earlier sync added. Meta Custom
Audiences is faked with its documented answer (`audience_id`, `session_id`, `num_received`,
`num_invalid_entries`: https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/)."""
from __future__ import annotations

import json

import responses
from sqlalchemy import select

from plugin.campaigns import syncs
from plugin.engagement import unsubscribes
from plugin.store import transaction
from plugin.store.tables import destination_members
from tests.plugin.test_syncs import META, meta_ok, world  # noqa: F401  (the fixture)


def test_an_ads_opt_out_is_not_synced_and_is_removed_from_a_mirror(engine, world):  # noqa: F811
    dest = syncs.attach(engine, world["ws"], world["segment"], "meta_custom_audience", "6001")
    with transaction(engine) as conn:
        unsubscribes.opt_out(conn, world["ws"], world["ids"]["u9"], "ads", "host")
        unsubscribes.opt_out(conn, world["ws"], world["ids"]["u8"], "email", "one_click")  # not ads
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.POST, 4)
        first = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        assert len(json.loads(rsps.calls[0].request.body)["payload"]["data"]) == 4
    assert first["added"] == 4
    with engine.connect() as conn:
        members = set(conn.execute(select(destination_members.c.user_id)).scalars())
    assert world["ids"]["u9"] not in members and world["ids"]["u8"] in members
    with transaction(engine) as conn:
        unsubscribes.opt_out(conn, world["ws"], world["ids"]["u7"], "ads", "host")
    with responses.RequestsMock() as rsps:
        meta_ok(rsps, responses.DELETE, 1)
        second = syncs.sync_destination(engine, world["ws"], world["segment"], dest["id"])
        assert rsps.calls[0].request.url.startswith(META)
    assert (second["added"], second["removed"]) == (0, 1)
