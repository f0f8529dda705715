"""NUL characters: valid JSON, but no store keeps them (PostgreSQL refuses them): a 400, never a 500."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from plugin import workspaces
from plugin.ingest.files import import_file
from plugin.store.tables import events, users
from tests.helpers import bearer, post_signed
from tests.plugin.hosting import install


@pytest.mark.parametrize("path, payload, where", [
    ("/webhooks/events", {"events": [{"user_id": "u\u0000", "event": "e", "timestamp": 1_800_000_000}]},
     "events.0.user_id"),
    ("/webhooks/users", {"users": [{"user_id": "u", "nick": "a\u0000b"}]}, "users.0.nick"),
    ("/webhooks/users/delete", {"user_ids": ["x", "\u0000"]}, "user_ids.1"),
    ("/webhooks/events", {"events": [{"user_id": "u", "event": "e", "timestamp": 1_800_000_000,
                                      "properties": {"k\u0000": 1}}]}, "events.0.properties.k\u0000"),
])
def test_webhooks_refuse_nul_with_the_field(client, engine, path, payload, where):
    response = post_signed(client, path, payload)
    assert response.status_code == 400, response.json
    assert list(response.json["error"]["details"]) == [where]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 0


def test_settings_refuse_nul(host):
    key = install(host).json["credentials"]["api_key"]
    response = host.patch("/v1/settings", headers=bearer(key), json={"host": {"region": "eu\u0000"}})
    assert response.status_code == 400 and "host.region" in response.json["error"]["details"]


def test_import_rejects_nul_rows_and_keeps_the_rest(engine, tmp_path):
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in (
        {"user_id": "ok", "plan": "gold"}, {"user_id": "bad", "plan": "go\u0000ld"})) + "\n")
    workspace = workspaces.ensure(engine, workspaces.DEFAULT)
    report = import_file(engine, workspace.id, path, "users")
    assert (report.written, report.rejected) == (1, 1)
    assert report.errors[0]["line"] == 2 and "plan" in report.errors[0]["errors"]
    with engine.connect() as conn:
        assert conn.execute(select(users.c.external_id)).scalars().all() == ["ok"]
