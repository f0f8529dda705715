"""An app set up as a host installs it: partner secret, encryption key, host origin."""
from __future__ import annotations

import pytest

from plugin import create_app
from tests.helpers import PARTNER_SECRET, SECRET_KEY, post_signed

HOST_ORIGIN = "https://dashboard.host.example"
GOOD_SETTINGS = {
    "host": {"platform": "braze", "base_url": "https://rest.fra-01.braze.eu", "region": "fra-01",
             "api_key": "braze-rest-key-0123456789", "signing_secret": "whsec_" + "b" * 32},
    "unsubscribe_url": "https://shop.example/unsubscribe/{user_id}",
    "frequency_caps": {"email": {"max_messages": 2, "period": "week"}},
    "connectors": {"sendgrid": {"enabled": True, "api_key": "SG.sendgrid-secret-value-0123",
                                "from_email": "news@shop.example"}},
}
# Every secret value above: none may ever be seen in the store, a response or a log line.
SECRET_VALUES = ("braze-rest-key-0123456789", "whsec_" + "b" * 32, "SG.sendgrid-secret-value-0123")


@pytest.fixture
def hosted_app(app_settings):
    app = create_app({**app_settings, "partner_secrets": [PARTNER_SECRET], "secret_keys": [SECRET_KEY],
                      "host_origins": [HOST_ORIGIN]})
    app.config["TESTING"] = True
    yield app
    app.extensions["likely_engine"].dispose()


@pytest.fixture
def host(hosted_app):
    return hosted_app.test_client()


def install(client, slug: str = "acme", settings: dict | None = None, webhook_id: str | None = None, **extra):
    payload = {"workspace": slug, "name": f"{slug.title()} Inc.",
               "settings": GOOD_SETTINGS if settings is None else settings, **extra}
    return post_signed(client, "/webhooks/install", payload, secret=PARTNER_SECRET, webhook_id=webhook_id)


def uninstall(client, slug: str = "acme", webhook_id: str | None = None):
    return post_signed(client, "/webhooks/uninstall", {"workspace": slug}, secret=PARTNER_SECRET,
                       webhook_id=webhook_id)
