"""Install, settings updates and uninstall by the host; purge after the grace period."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select

from plugin import installs, workspaces
from plugin.store.tables import api_keys, events, users, webhook_receipts, webhook_secrets
from plugin.store.tables import workspaces as workspaces_table
from plugin.store.types import utcnow
from tests.helpers import PARTNER_SECRET, WEBHOOK_SECRET, bearer, post_signed
from tests.plugin.hosting import GOOD_SETTINGS, install, uninstall

EVENT = {"user_id": "u1", "event": "purchase", "timestamp": "2026-01-01T10:00:00Z"}


def test_first_install_creates_the_workspace_and_issues_credentials_once(host, engine):
    response = install(host, webhook_id="msg_install_1")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["workspace"] == {"slug": "acme", "name": "Acme Inc.", "status": "active"}
    assert body["created"] is True and body["credentials_issued"] is True and body["duplicate"] is False
    key, secret = body["credentials"]["api_key"], body["credentials"]["webhook_secret"]
    assert key.startswith("lk_") and secret.startswith("whsec_")
    # The credentials work: the key reads /v1, the secret signs the workspace's webhooks.
    assert host.get("/v1/settings", headers=bearer(key)).json["workspace"]["slug"] == "acme"
    sent = post_signed(host, "/webhooks/acme/events", {"events": [EVENT]}, secret=secret)
    assert sent.status_code == 200, sent.json
    # Stored hashed and encrypted, never as given.
    with engine.connect() as conn:
        assert conn.execute(select(api_keys.c.key_hash)).scalars().all() == [workspaces.hash_key(key)]
        stored = conn.execute(select(webhook_secrets.c.secret_encrypted)).scalars().all()
    assert len(stored) == 1 and secret not in stored[0]
    # A redelivery answers as the first time, but never shows the credentials again.
    again = install(host, webhook_id="msg_install_1")
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["credentials"] is None and again.json["credentials_issued"] is True


def test_a_later_install_updates_settings_without_new_credentials(host):
    first = install(host).json["credentials"]
    changed = {**GOOD_SETTINGS, "unsubscribe_url": "https://shop.example/u/{user_id}"}
    response = install(host, settings=changed)
    assert response.status_code == 200 and response.json["created"] is False
    assert response.json["credentials"] is None and response.json["credentials_issued"] is False
    assert response.json["settings"]["unsubscribe_url"] == "https://shop.example/u/{user_id}"
    assert host.get("/v1/settings", headers=bearer(first["api_key"])).status_code == 200


def test_rotate_credentials_replaces_the_old_ones(host):
    old = install(host).json["credentials"]
    new = install(host, rotate_credentials=True).json["credentials"]
    assert new and new["api_key"] != old["api_key"]
    assert host.get("/v1/settings", headers=bearer(old["api_key"])).status_code == 401
    assert host.get("/v1/settings", headers=bearer(new["api_key"])).status_code == 200
    assert post_signed(host, "/webhooks/acme/events", {"events": [EVENT]}, secret=old["webhook_secret"]).status_code == 401


def test_bad_settings_name_each_field_and_write_nothing(host, engine):
    bad = {"host": {"base_url": "http://plain.example", "api_key": "short", "colour": "red"},
           "frequency_caps": {"email": {"max_messages": -1}},
           "connectors": {"sendgrid": {"enabled": True}}}
    response = install(host, settings=bad)
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "invalid_settings"
    assert set(error["details"]) == {"settings.host", "settings.host.base_url", "settings.host.api_key",
                                     "settings.frequency_caps.email.max_messages", "settings.connectors.sendgrid"}
    assert "colour" in error["details"]["settings.host"][0]
    assert "short" not in response.get_data(as_text=True)  # a secret's value is never echoed
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(workspaces_table)
                            .where(workspaces_table.c.slug == "acme")).scalar() == 0


@pytest.mark.parametrize("secret", [None, WEBHOOK_SECRET])
def test_install_needs_the_partner_signature(host, secret):
    payload = {"workspace": "acme", "settings": {}}
    if secret is None:
        response = host.post("/webhooks/install", json=payload)
    else:
        response = post_signed(host, "/webhooks/install", payload, secret=secret)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_signature"


def test_install_is_refused_when_no_partner_secret_is_configured(client):
    response = post_signed(client, "/webhooks/install", {"workspace": "acme"}, secret=PARTNER_SECRET)
    assert response.status_code == 401
    assert response.json["error"]["details"] == {"reason": "no_secret"}


@pytest.mark.parametrize("slug, status", [("default", 403), ("install", 403), ("Not A Slug", 400)])
def test_reserved_or_bad_slugs(host, slug, status):
    response = install(host, slug=slug, settings={})
    assert response.status_code == status


def test_uninstall_stops_the_workspace_and_reinstall_brings_it_back(host, engine):
    old = install(host).json["credentials"]
    assert post_signed(host, "/webhooks/acme/events", {"events": [EVENT]}, secret=old["webhook_secret"]).status_code == 200
    response = uninstall(host, webhook_id="msg_un_1")
    assert response.status_code == 200 and response.json["workspace"]["status"] == "uninstalled"
    purge_after = datetime.fromisoformat(response.json["purge_after"])
    assert timedelta(days=29, hours=23) < purge_after - utcnow() <= timedelta(days=30)
    assert uninstall(host, webhook_id="msg_un_1").json["duplicate"] is True
    # Keys die, webhooks are refused, the scheduler sees the status.
    assert host.get("/v1/settings", headers=bearer(old["api_key"])).status_code == 401
    refused = post_signed(host, "/webhooks/acme/events", {"events": [EVENT]}, secret=old["webhook_secret"])
    assert refused.status_code == 403 and refused.json["error"]["code"] == "workspace_uninstalled"
    with engine.connect() as conn:
        assert conn.execute(select(workspaces_table.c.status).where(workspaces_table.c.slug == "acme")).scalar() == "uninstalled"
    # Reinstalling within the grace period keeps the data and issues fresh credentials.
    again = install(host)
    assert again.status_code == 200 and again.json["credentials_issued"] is True
    new = again.json["credentials"]
    assert host.get("/v1/settings", headers=bearer(new["api_key"])).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 1


def test_uninstalling_an_unknown_workspace_is_404(host):
    assert uninstall(host, slug="nobody").status_code == 404


def _rows(engine, workspace_id: int) -> int:
    with engine.connect() as conn:
        return sum(conn.execute(select(func.count()).select_from(t).where(t.c.workspace_id == workspace_id)).scalar()
                   for t in (api_keys, webhook_secrets, webhook_receipts, users, events))


def test_purge_deletes_every_row_of_workspaces_past_grace_only(host, engine):
    for slug in ("gone", "recent", "kept"):
        secret = install(host, slug=slug).json["credentials"]["webhook_secret"]
        assert post_signed(host, f"/webhooks/{slug}/events", {"events": [EVENT]}, secret=secret).status_code == 200
    with engine.connect() as conn:
        ids = dict(conn.execute(select(workspaces_table.c.slug, workspaces_table.c.id)).all())
    now = datetime(2030, 1, 31, tzinfo=timezone.utc)
    with engine.begin() as conn:
        installs.uninstall(conn, "gone", now=now - timedelta(days=31))
        installs.uninstall(conn, "recent", now=now - timedelta(days=29))
    assert all(_rows(engine, ids[slug]) >= 5 for slug in ("gone", "recent", "kept"))
    assert installs.purge_uninstalled(engine, now, grace_days=30) == ["gone"]
    assert _rows(engine, ids["gone"]) == 0
    assert _rows(engine, ids["recent"]) >= 5 and _rows(engine, ids["kept"]) >= 5
    with engine.connect() as conn:
        assert set(conn.execute(select(workspaces_table.c.slug)).scalars()) == {"default", "recent", "kept"}
    assert installs.purge_uninstalled(engine, now + timedelta(days=2), grace_days=30) == ["recent"]


def test_purge_spares_a_workspace_reinstalled_since(host, engine):
    install(host)
    now = datetime(2030, 1, 31, tzinfo=timezone.utc)
    with engine.begin() as conn:
        installs.uninstall(conn, "acme", now=now - timedelta(days=40))
    install(host)
    assert installs.purge_uninstalled(engine, now) == []


def test_purge_command(hosted_app, engine, monkeypatch):
    from click.testing import CliRunner

    from plugin.cli import cli
    with engine.begin() as conn:
        ws = workspaces.ensure_in(conn, "old")
        conn.execute(insert(users).values(workspace_id=ws.id, external_id="u", attributes={},
                                          created_at=utcnow(), updated_at=utcnow()))
        installs.uninstall(conn, "old", now=utcnow() - timedelta(days=3))
    monkeypatch.setenv("LIKELY_DATABASE_URL", hosted_app.config["LIKELY"]["database_url"])
    monkeypatch.setenv("LIKELY_UNINSTALL_GRACE_DAYS", "2")
    result = CliRunner().invoke(cli, ["workspaces", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 1 workspace(s): old" in result.output
