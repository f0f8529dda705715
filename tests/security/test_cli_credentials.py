"""`likely workspaces create` applies the manifest's credential rules (issue 13, point 5).

The attack: `--webhook-secret whsec_` (an empty signing key: a sign-in link signed with it opens
the workspace, every webhook to it answers 500), `--api-key a`, or a slug like `install` that
shadows a webhook path. Each is refused with a clear error and nothing is written.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import cli
from plugin.store.tables import api_keys, webhook_secrets, workspaces
from tests.helpers import OTHER_SECRET, SECRET_KEY

GOOD_KEY = "acme-api-key-0123456789"


@pytest.fixture
def run(app_settings, monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", app_settings["database_url"])
    monkeypatch.setenv("LIKELY_SECRET_KEY", SECRET_KEY)
    return lambda *args: CliRunner().invoke(cli, ["workspaces", "create", *args])


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar()
                     for t in (workspaces, api_keys, webhook_secrets))


@pytest.mark.parametrize("args, field", [
    (["acme", "--webhook-secret", "whsec_"], "webhook_secret"),
    (["acme", "--webhook-secret", "whsec_c2hvcnQ="], "webhook_secret"),           # 8 characters
    (["acme", "--webhook-secret", "whsec_" + "*" * 32], "webhook_secret"),        # not base64
    (["acme", "--webhook-secret", "whsec_" + "A" * 25], "webhook_secret"),        # bad padding
    (["acme", "--webhook-secret", OTHER_SECRET.removeprefix("whsec_")], "webhook_secret"),  # no prefix
    (["acme", "--api-key", "a"], "api_key"),
    (["acme", "--api-key", "fifteen-chars!!"], "api_key"),
    (["install", "--api-key", GOOD_KEY], "slug"),
    (["uninstall"], "slug"),
    (["events"], "slug"),
    (["Acme"], "slug"),
    (["a" * 65], "slug"),
])
def test_weak_or_malformed_credentials_are_refused_and_nothing_is_written(run, engine, args, field):
    before = counts(engine)
    result = run(*args, *(["--api-key", GOOD_KEY] if field != "api_key" and "--api-key" not in args else []))
    assert result.exit_code != 0
    assert f"{field}:" in result.output and "nothing was written" in result.output
    assert counts(engine) == before


def test_one_bad_credential_among_good_ones_writes_nothing(run, engine):
    before = counts(engine)
    result = run("acme", "--api-key", GOOD_KEY, "--webhook-secret", OTHER_SECRET, "--api-key", "short")
    assert result.exit_code != 0 and "api_key: #2" in result.output
    assert counts(engine) == before


def test_a_refused_secret_is_never_echoed(run):
    secret = "whsec_" + "s3cr3t-not-base64!" * 2
    result = run("acme", "--webhook-secret", secret)
    assert result.exit_code != 0 and secret not in result.output and "s3cr3t" not in result.output


def test_good_credentials_are_written(run, engine):
    before = counts(engine)
    result = run("acme", "--api-key", GOOD_KEY, "--webhook-secret", OTHER_SECRET)
    assert result.exit_code == 0, result.output
    assert counts(engine) == (before[0] + 1, before[1] + 1, before[2] + 1)
    # The operator's own `default` workspace may be given credentials by hand.
    assert run("default", "--api-key", "default-api-key-0123456789").exit_code == 0
