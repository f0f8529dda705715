"""Secrets at rest are encrypted, rotate with the key, and never leave in a response or a log line."""
from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plugin import create_app, crypto, workspace_settings, workspaces
from plugin.cli import cli
from plugin.store.tables import metadata, webhook_secrets
from tests.helpers import OLD_SECRET_KEY, OTHER_SECRET, PARTNER_SECRET, SECRET_KEY, bearer, post_signed
from tests.plugin.hosting import GOOD_SETTINGS, SECRET_VALUES, install


def _everything_stored(engine) -> str:
    """Every value of every table, as text: what someone holding a copy of the store would see."""
    dump = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).all():
                dump.append(json.dumps([str(v) for v in row]))
    return "\n".join(dump)


def test_no_secret_is_stored_in_plaintext(host, engine):
    credentials = install(host).json["credentials"]
    stored = _everything_stored(engine)
    for value in (*SECRET_VALUES, credentials["api_key"], credentials["webhook_secret"]):
        assert value not in stored
    # The non-secret settings stay readable for queries and support.
    assert "https://rest.fra-01.braze.eu" in stored
    with host.application.app_context():
        with engine.connect() as conn:
            ws = workspaces.get(conn, "acme")
            assert workspace_settings.read(conn, ws.id) == GOOD_SETTINGS
            assert workspaces.stored_webhook_secrets(conn, ws) == [credentials["webhook_secret"]]


def test_settings_are_shown_redacted_and_patched_by_merge(host):
    key = install(host).json["credentials"]["api_key"]
    shown = host.get("/v1/settings", headers=bearer(key))
    assert shown.status_code == 200
    settings = shown.json["settings"]
    assert settings["host"]["api_key"] == workspace_settings.REDACTED
    assert settings["host"]["signing_secret"] == workspace_settings.REDACTED
    assert settings["connectors"]["sendgrid"]["api_key"] == workspace_settings.REDACTED
    assert settings["host"]["base_url"] == GOOD_SETTINGS["host"]["base_url"]
    # Sending the redacted form back keeps every secret; null removes; objects merge.
    patched = host.patch("/v1/settings", headers=bearer(key), json={
        **settings, "host": {**settings["host"], "region": "fra-02"}, "unsubscribe_url": None})
    assert patched.status_code == 200, patched.json
    assert patched.json["settings"]["host"]["region"] == "fra-02"
    assert "unsubscribe_url" not in patched.json["settings"]
    with host.application.app_context():
        from plugin import store
        with store.engine().connect() as conn:
            stored = workspace_settings.read(conn, workspaces.get(conn, "acme").id)
    assert stored["host"]["api_key"] == GOOD_SETTINGS["host"]["api_key"]
    assert stored["connectors"] == GOOD_SETTINGS["connectors"]
    # A new secret replaces the old one.
    host.patch("/v1/settings", headers=bearer(key), json={"host": {"api_key": "a-brand-new-key-000"}})
    with host.application.app_context():
        with store.engine().connect() as conn:
            assert workspace_settings.read(conn, workspaces.get(conn, "acme").id)["host"]["api_key"] == "a-brand-new-key-000"


def test_patch_is_validated_as_a_whole(host):
    key = install(host).json["credentials"]["api_key"]
    response = host.patch("/v1/settings", headers=bearer(key),
                          json={"host": {"base_url": "ftp://x", "signing_secret": "not-whsec"}, "bogus": 1})
    assert response.status_code == 400
    details = response.json["error"]["details"]
    assert set(details) == {"settings", "host.base_url", "host.signing_secret"}
    assert "not-whsec" not in response.get_data(as_text=True)
    assert host.patch("/v1/settings", headers=bearer(key), json=[1]).status_code == 400
    assert host.patch("/v1/settings", headers=bearer(key), data="x", content_type="text/plain").status_code == 415


def test_workspaces_each_see_their_own_settings(host):
    acme = install(host, "acme").json["credentials"]["api_key"]
    other = install(host, "globex", settings={"host": {"region": "us-01"}}).json["credentials"]["api_key"]
    assert host.get("/v1/settings", headers=bearer(acme)).json["settings"]["host"]["region"] == "fra-01"
    assert host.get("/v1/settings", headers=bearer(other)).json["settings"] == {"host": {"region": "us-01"}}


def test_rotation_re_encrypts_with_the_first_key(app_settings, engine):
    old = crypto.Keyring([OLD_SECRET_KEY])
    ws = workspaces.ensure(engine, "acme")
    workspaces.add_webhook_secret(engine, ws, OTHER_SECRET, keyring=old)
    with engine.begin() as conn:
        workspace_settings.write(conn, ws.id, GOOD_SETTINGS, old)
    both = crypto.Keyring([SECRET_KEY, OLD_SECRET_KEY])
    assert crypto.rotate_stored(engine, both) == {"webhook_secrets": 1, "workspace_settings": 1}
    new_only = crypto.Keyring([SECRET_KEY])
    with engine.connect() as conn:
        assert workspaces.stored_webhook_secrets(conn, ws, new_only) == [OTHER_SECRET]
        assert workspace_settings.read(conn, ws.id, new_only) == GOOD_SETTINGS
        with pytest.raises(crypto.UndecryptableSecret):
            workspaces.stored_webhook_secrets(conn, ws, old)


def test_rotate_command(app_settings, engine, monkeypatch):
    ws = workspaces.ensure(engine, "acme")
    workspaces.add_webhook_secret(engine, ws, OTHER_SECRET, keyring=crypto.Keyring([OLD_SECRET_KEY]))
    monkeypatch.setenv("LIKELY_DATABASE_URL", app_settings["database_url"])
    monkeypatch.setenv("LIKELY_SECRET_KEY", f"{SECRET_KEY},{OLD_SECRET_KEY}")
    result = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 webhook secret(s)" in result.output
    with engine.connect() as conn:
        assert workspaces.stored_webhook_secrets(conn, ws, crypto.Keyring([SECRET_KEY])) == [OTHER_SECRET]
    # Without the key a secret was encrypted with, the command says so instead of crashing.
    monkeypatch.setenv("LIKELY_SECRET_KEY", OLD_SECRET_KEY)
    failed = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert failed.exit_code == 1 and "cannot be decrypted" in failed.output


def test_generate_key_prints_a_usable_key():
    result = CliRunner().invoke(cli, ["secrets", "generate-key"])
    crypto.Keyring([result.output.strip()])


def test_webhooks_verify_with_encrypted_secrets_only(hosted_app, engine):
    client = hosted_app.test_client()
    ws = workspaces.ensure(engine, "acme")
    with hosted_app.app_context():
        workspaces.add_webhook_secret(engine, ws, OTHER_SECRET)
    with engine.connect() as conn:
        token = conn.execute(select(webhook_secrets.c.secret_encrypted)).scalar()
    assert OTHER_SECRET not in token
    batch = {"events": [{"user_id": "u", "event": "e", "timestamp": "2026-01-01T00:00:00Z"}]}
    assert post_signed(client, "/webhooks/acme/events", batch, secret=OTHER_SECRET).status_code == 200


def test_a_settings_error_never_echoes_env_secrets():
    from plugin.errors import SettingsError
    with pytest.raises(SettingsError) as raised:
        create_app({"database_url": "sqlite://", "secret_keys": ["not-a-fernet-key-but-secret"]})
    assert "not-a-fernet-key-but-secret" not in str(raised.value) and "LIKELY_SECRET_KEY" in str(raised.value)


def test_no_secret_in_any_response_or_log_line(host, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQLAlchemy sets its own WARN level
    bodies = []
    first = install(host)
    credentials = first.json["credentials"]
    key, secret = credentials["api_key"], credentials["webhook_secret"]
    bodies += [install(host).get_data(as_text=True),
               host.get("/v1/settings", headers=bearer(key)).get_data(as_text=True),
               host.patch("/v1/settings", headers=bearer(key), json={"host": {"region": "x1"}}).get_data(as_text=True),
               host.patch("/v1/settings", headers=bearer(key),
                          json={"host": {"api_key": "x"}}).get_data(as_text=True),  # invalid secret
               post_signed(host, "/webhooks/acme/events", {"events": []}, secret=secret).get_data(as_text=True),
               host.get("/v1/settings", headers=bearer(key + "x")).get_data(as_text=True)]
    secrets = (*SECRET_VALUES, key, secret, PARTNER_SECRET, SECRET_KEY)
    for body in bodies:
        for value in secrets:
            assert value not in body
    # The first install's answer is the one place the issued credentials appear.
    assert key in first.get_data(as_text=True)
    # SQLAlchemy at INFO logs every statement with its parameters: a secret
    # written in plaintext anywhere would show up here.
    assert any(record.name.startswith("sqlalchemy") for record in caplog.records)
    for record in caplog.records:
        seen = " ".join([record.getMessage(), *(str(v) for v in record.__dict__.values())])
        for value in secrets:
            assert value not in seen, record


def test_workspaces_create_stores_the_secret_encrypted(app_settings, engine, monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", app_settings["database_url"])
    monkeypatch.setenv("LIKELY_SECRET_KEY", SECRET_KEY)
    result = CliRunner().invoke(cli, ["workspaces", "create", "acme", "--webhook-secret", OTHER_SECRET])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        ws = workspaces.get(conn, "acme")
        token = conn.execute(select(webhook_secrets.c.secret_encrypted)).scalar()
        assert OTHER_SECRET not in token
        assert workspaces.stored_webhook_secrets(conn, ws, crypto.Keyring([SECRET_KEY])) == [OTHER_SECRET]
