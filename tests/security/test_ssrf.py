"""SSRF through connector settings (issue 13, point 1), replayed against the real app.

The attack: a tenant holding its own API key points a connector at an address of its choosing
(a loopback listener that redirects to a cloud metadata path), then asks for a sync or a
delivery. Before the fix the server followed the redirect, copied the internal answer into
the sync result and sent the host-set Meta token to the listener. Now:

* provider URLs must be on the provider's documented hosts (settings refuse anything else, and
  a connector refuses to call a URL stored before that rule existed);
* free-form destinations (webhook, SMTP) are checked when connecting, after DNS resolution, so
  a name that resolves to loopback (DNS rebinding) is refused; the operator may trust named hosts;
* no redirect is followed, and a result carries our code, never the body that answered.
"""
from __future__ import annotations

import json
import socket

import pytest
import responses
from sqlalchemy import select

from plugin import create_app
from plugin.audiences.compiler import parse_definition
from plugin.audiences.segments import create_segment
from plugin.campaigns import definitions, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.store import transaction
from plugin.store.tables import outbox
from tests.helpers import bearer
from tests.plugin import campaign_data as cd
from tests.security.listeners import METADATA_BODY, Listener

NOW = 1_790_000_000
META_TOKEN = "EAAB-host-set-meta-token-0123456789"
WEBHOOK_SECRET = "whsec_" + "c2lnbmluZy1zZWNyZXQtZm9yLXRoZS13ZWJob29r"
SMTP_PASSWORD = "smtp-password-0123456789"
GRAPH = "https://graph.facebook.com/v25.0/6001/users"


@pytest.fixture
def segment(engine):
    """Five scored users with e-mail addresses in one segment of the default workspace."""
    ws = cd.workspace_id(engine)
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com"}) for i in range(5)])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    with transaction(engine) as conn:
        made = create_segment(conn, ws, "buyers", parse_definition(
            {"filter": "event_likelihood_score", "prediction": pid, "gte": 50}), NOW)
    return {"ws": ws, "pid": pid, "id": made.id}


def sync(client, segment_id: int) -> dict:
    """Attach the Meta audience 6001 (once) and sync the segment over the API; the sync's log."""
    client.post(f"/v1/segments/{segment_id}/destinations",
                json={"connector": "meta_custom_audience", "audience_id": "6001"}, headers=bearer())
    answer = client.post(f"/v1/segments/{segment_id}/sync", headers=bearer())
    assert answer.status_code == 200, answer.json
    [log] = answer.json["syncs"]
    return log


def patch(client, body: dict):
    return client.patch("/v1/settings", json=body, headers=bearer())


# -- provider connectors: documented hosts only ---------------------------------------------

def test_the_reported_attack_a_graph_url_on_a_loopback_listener_is_refused(client, segment):
    """The red team's replay: the host set the Meta token, the tenant moves the Graph URL."""
    assert patch(client, {"connectors": {"meta_custom_audience": {
        "enabled": True, "access_token": META_TOKEN, "max_attempts": 1}}}).status_code == 200
    with Listener() as listener:
        answer = patch(client, {"connectors": {"meta_custom_audience": {
            "graph_base_url": listener.url("/redirect")}}})
        assert answer.status_code == 400
        assert answer.json["error"]["code"] == "invalid_settings"
        assert "connectors.meta_custom_audience.graph_base_url" in answer.json["error"]["details"]
        with responses.RequestsMock() as rsps:  # the Graph URL kept is Meta's own
            rsps.add(responses.POST, GRAPH, json={"audience_id": "6001", "session_id": 1, "num_received": 5})
            result = sync(client, segment["id"])
        assert (result["status"], result["added"]) == ("ok", 5)
    assert listener.connections == 0 and listener.requests == []


def test_a_url_stored_before_the_rule_is_never_called(client, engine, segment):
    """Settings written by an older version (or straight into the store) are checked again by
    the connector itself: nothing reaches the listener, no token leaves, no body comes back."""
    with Listener() as listener:
        cd.set_settings(engine, segment["ws"], connectors={"meta_custom_audience": {
            "enabled": True, "access_token": META_TOKEN, "max_attempts": 1,
            "graph_base_url": listener.url("/redirect")}})
        result = sync(client, segment["id"])
    assert listener.connections == 0 and listener.requests == []
    assert result["status"] == "failed" and result["added"] == 0
    assert result["error"].startswith("configuration_error:") and "graph_base_url" in result["error"]
    text = json.dumps(result)
    assert "AccessKeyId" not in text and META_TOKEN not in text


LOOK_ALIKES = ["http://127.0.0.1:9/", "https://127.0.0.1/", "https://169.254.169.254/latest/meta-data/",
               "https://[::1]/", "https://10.0.0.8/", "https://localhost/", "https://metadata.google.internal/",
               "https://graph.facebook.com.attacker.example/v25.0", "https://attacker.example/graph.facebook.com",
               "https://graph.facebook.com@127.0.0.1/v25.0", "https://user:pw@graph.facebook.com/v25.0",
               "http://graph.facebook.com/v25.0", "graph.facebook.com/v25.0", "https:///v25.0"]

PROVIDER_URLS = [
    ("meta_custom_audience", "graph_base_url", {"access_token": META_TOKEN}),
    ("sendgrid", "base_url", {"api_key": "SG.key-0123456789", "from_email": "news@shop.example"}),
    ("fcm", "base_url", {"project_id": "p", "service_account_json": "{}"}),
    ("fcm", "token_uri", {"project_id": "p", "service_account_json": "{}"}),
    ("google_customer_match", "base_url", {"service_account_json": "{}", "operating_account_id": "1"}),
    ("google_customer_match", "token_uri", {"service_account_json": "{}", "operating_account_id": "1"}),
    ("braze", "rest_endpoint", {"api_key": "braze-key-0123456789"}),
    ("braze_in_app", "rest_endpoint", {"api_key": "braze-key-0123456789"}),
    ("clevertap", "base_url", {"account_id": "acc", "passcode": "pass-0123456789"}),
    ("clevertap_in_app", "base_url", {"account_id": "acc", "passcode": "pass-0123456789"}),
]


@pytest.mark.parametrize("connector, field, required", PROVIDER_URLS)
def test_every_provider_url_refuses_hosts_outside_the_providers_documented_ones(client, connector, field,
                                                                              required):
    for url in LOOK_ALIKES:
        answer = patch(client, {"connectors": {connector: {**required, field: url}}})
        assert answer.status_code == 400, url
        assert f"connectors.{connector}.{field}" in answer.json["error"]["details"], url
    assert connector not in client.get("/v1/settings", headers=bearer()).json["settings"].get("connectors", {})


@pytest.mark.parametrize("connector, field, url, required", [
    ("sendgrid", "base_url", "https://api.eu.sendgrid.com", PROVIDER_URLS[1][2]),
    ("braze", "rest_endpoint", "https://rest.fra-02.braze.eu", PROVIDER_URLS[6][2]),
    ("braze", "rest_endpoint", "https://rest.au-01.braze.com/", PROVIDER_URLS[6][2]),
    ("clevertap", "base_url", "https://in1.api.clevertap.com", PROVIDER_URLS[8][2]),
    ("clevertap", "base_url", "https://mec1.api.clevertap.com", PROVIDER_URLS[8][2]),
    ("meta_custom_audience", "graph_base_url", "https://graph.facebook.com/v26.0", PROVIDER_URLS[0][2]),
    ("google_customer_match", "token_uri", "https://oauth2.googleapis.com/token", PROVIDER_URLS[4][2]),
])
def test_documented_regional_hosts_are_accepted(client, connector, field, url, required):
    answer = patch(client, {"connectors": {connector: {**required, field: url}}})
    assert answer.status_code == 200, answer.json
    assert answer.json["settings"]["connectors"][connector][field] == url


def test_a_redirect_from_a_documented_host_is_not_followed(client, engine, segment):
    """Graph answers a 302 toward a metadata address (say, a compromised edge): the sync fails
    with our own code and the redirect target is never asked."""
    cd.set_settings(engine, segment["ws"], connectors={"meta_custom_audience": {
        "enabled": True, "access_token": META_TOKEN, "max_attempts": 1}})
    target = "http://169.254.169.254/latest/meta-data/iam/security-credentials/role"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, GRAPH, status=302, headers={"Location": target})
        asked = rsps.add(responses.GET, target, body=METADATA_BODY)
        result = sync(client, segment["id"])
        assert len(rsps.calls) == 1 and asked.call_count == 0
    assert result["status"] == "failed" and result["error"] == "http_302: redirect_not_followed"


def test_a_result_never_echoes_the_body_that_answered(client, engine, segment):
    """An answer that is not Graph's documented error object is reported by status alone; a
    Graph error keeps its code and a short message, with secrets redacted. Error shape:
    https://developers.facebook.com/docs/graph-api/guides/error-handling/"""
    cd.set_settings(engine, segment["ws"], connectors={"meta_custom_audience": {
        "enabled": True, "access_token": META_TOKEN, "max_attempts": 1}})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, GRAPH, status=500, body=METADATA_BODY, content_type="text/plain")
        first = sync(client, segment["id"])
    assert first["error"] == "http_500"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, GRAPH, status=400, json={"error": {
            "message": f"Invalid OAuth access token - Cannot parse access token {META_TOKEN} " + "x" * 500,
            "type": "OAuthException", "code": 190, "fbtrace_id": "A1b2C3"}})
        second = sync(client, segment["id"])
    assert second["error"].startswith("graph_190/") and META_TOKEN not in second["error"]
    assert len(second["error"]) <= 200


# -- free-form destinations: checked when connecting, after DNS resolution ------------------

def webhook_campaign(engine, ws: int, pid: int, connector: str = "webhook", channel: str = "webhook") -> None:
    tier = {"name": "High", "band": {"categories": ["High"]}, "offer": {"discount_percent": 0},
            "channels": [{"channel": channel, "connector": connector,
                          "template": {"subject": "Hi", "text": "Hello {{ user.first_name }}", "html": "<p>Hello</p>"}}]}
    body = cd.campaign_body(pid, tiers=[tier], name=f"via {connector}")
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(body))
    runs.start_run(engine, ws, campaign["id"], now_ts=NOW)


def outcomes(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r.status, r.reason or "") for r in conn.execute(select(outbox))]


def all_refused(engine) -> bool:
    found = outcomes(engine)
    return bool(found) and all(status == "held" and "destination_refused" in reason for status, reason in found)


@pytest.fixture
def resolver(monkeypatch):
    """DNS as an attacker controls it: `names` map to the addresses the test chooses."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], int(port)))]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.mark.parametrize("connector, settings", [
    ("webhook", {"url": "https://127.0.0.1:8443/hook", "secret": WEBHOOK_SECRET}),
    ("webhook", {"url": "https://[::ffff:169.254.169.254]/latest/meta-data/", "secret": WEBHOOK_SECRET}),
    ("webhook", {"url": "https://localhost/hook", "secret": WEBHOOK_SECRET}),
    ("webhook", {"url": "https://10.0.0.8/hook", "secret": WEBHOOK_SECRET}),
    ("smtp", {"host": "127.0.0.1", "from_email": "news@shop.example"}),
    ("smtp", {"host": "169.254.169.254", "from_email": "news@shop.example"}),
    ("smtp", {"host": "mail.localhost", "from_email": "news@shop.example"}),
])
def test_an_internal_address_written_as_such_is_refused_by_the_settings(client, connector, settings):
    answer = patch(client, {"connectors": {connector: settings}})
    assert answer.status_code == 400
    field = "url" if connector == "webhook" else "host"
    assert f"connectors.{connector}.{field}" in answer.json["error"]["details"]


def test_a_webhook_whose_name_resolves_to_loopback_is_refused_when_connecting(client, engine, segment, resolver):
    """DNS rebinding: a public-looking name passes the settings, its DNS answer is loopback.
    The connector resolves, checks and refuses before a single byte is sent."""
    resolver["hooks.customer.example"] = "127.0.0.1"
    with Listener() as listener:
        answer = patch(client, {"connectors": {"webhook": {
            "enabled": True, "url": listener.url("/hook", scheme="https", host="hooks.customer.example"),
            "secret": WEBHOOK_SECRET, "max_attempts": 1}}})
        assert answer.status_code == 200, answer.json
        webhook_campaign(engine, segment["ws"], segment["pid"])
        deliver_outbox(engine, "w1", 100, now_ts=NOW)
    assert listener.connections == 0
    assert all_refused(engine), outcomes(engine)


def test_an_smtp_server_whose_name_resolves_to_loopback_is_refused_when_connecting(client, engine, segment,
                                                                                     resolver):
    resolver["smtp.customer.example"] = "127.0.0.1"
    with Listener() as listener:
        answer = patch(client, {"connectors": {"smtp": {
            "enabled": True, "host": "smtp.customer.example", "port": listener.port, "security": "none",
            "username": "likely", "password": SMTP_PASSWORD, "from_email": "news@shop.example",
            "max_attempts": 1}}, "unsubscribe_url": "https://shop.example/unsubscribe/{user_id}"})
        assert answer.status_code == 200, answer.json
        webhook_campaign(engine, segment["ws"], segment["pid"], connector="smtp", channel="email")
        deliver_outbox(engine, "w1", 100, now_ts=NOW)
    assert listener.connections == 0
    assert all_refused(engine), outcomes(engine)


def test_the_operator_may_trust_named_internal_hosts(app_settings, engine, segment, resolver):
    """LIKELY_OUTBOUND_ALLOWED_HOSTS: an on-premise receiver the operator names is reached."""
    resolver["hooks.internal.example"] = "127.0.0.1"
    app = create_app({**app_settings, "outbound_allowed_hosts": ["hooks.internal.example"]})
    try:
        with Listener() as listener:
            answer = app.test_client().patch("/v1/settings", headers=bearer(), json={"connectors": {"webhook": {
                "enabled": True, "url": listener.url("/hook", scheme="https", host="hooks.internal.example"),
                "secret": WEBHOOK_SECRET, "max_attempts": 1}}})
            assert answer.status_code == 200, answer.json
            webhook_campaign(engine, segment["ws"], segment["pid"])
            deliver_outbox(engine, "w1", 100, now_ts=NOW)
        # The listener speaks no TLS, so the send fails, but the connection was made.
        assert listener.connections >= 1
        assert outcomes(engine) and not any("destination_refused" in reason for _, reason in outcomes(engine))
    finally:
        app.extensions["likely_engine"].dispose()


# -- a secret never follows its connector to a new destination -----------------------------

def stored(client) -> dict:
    return client.get("/v1/settings", headers=bearer()).json["settings"]


def test_moving_a_provider_url_clears_its_secrets_which_must_be_sent_again(client):
    assert patch(client, {"connectors": {"meta_custom_audience": {
        "enabled": True, "access_token": META_TOKEN, "app_secret": "meta-app-secret-0123"}}}).status_code == 200
    moved = {"graph_base_url": "https://graph.facebook.com/v26.0"}
    for body in (moved, {**moved, "access_token": "********"}):
        answer = patch(client, {"connectors": {"meta_custom_audience": body}})
        assert answer.status_code == 400, body
        assert "connectors.meta_custom_audience" in answer.json["error"]["details"]
    assert stored(client)["connectors"]["meta_custom_audience"]["access_token"] == "********"
    answer = patch(client, {"connectors": {"meta_custom_audience": {**moved, "access_token": "EAAB-new-token-0123"}}})
    assert answer.status_code == 200
    section = stored(client)["connectors"]["meta_custom_audience"]
    assert section["access_token"] == "********" and "app_secret" not in section  # the optional one is gone
    # Anything but the destination keeps the secrets as before.
    assert patch(client, {"connectors": {"meta_custom_audience": {"max_attempts": 2}}}).status_code == 200
    assert stored(client)["connectors"]["meta_custom_audience"]["access_token"] == "********"


def test_moving_a_free_form_destination_clears_its_secrets(client):
    assert patch(client, {"connectors": {
        "webhook": {"url": "https://hooks.customer.example/a", "secret": WEBHOOK_SECRET},
        "smtp": {"host": "smtp.customer.example", "password": SMTP_PASSWORD, "from_email": "n@shop.example"}},
    }).status_code == 200
    # The webhook URL is itself a secret: a new one is sent, the signing secret must come with it.
    answer = patch(client, {"connectors": {"webhook": {"url": "https://attacker.example/b"}}})
    assert answer.status_code == 400 and "connectors.webhook" in answer.json["error"]["details"]
    assert patch(client, {"connectors": {"smtp": {"port": 2525}}}).status_code == 200
    assert "password" not in stored(client)["connectors"]["smtp"]
    assert stored(client)["connectors"]["webhook"]["secret"] == "********"


def test_moving_the_hosts_endpoint_clears_the_hosts_secrets(client):
    assert patch(client, {"host": {"platform": "braze", "base_url": "https://rest.fra-01.braze.eu",
                                   "api_key": "host-api-key-0123456789"}}).status_code == 200
    assert patch(client, {"host": {"base_url": "https://attacker.example"}}).status_code == 200
    assert "api_key" not in stored(client)["host"]
