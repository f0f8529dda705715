"""Issue 13 point 7: the small holes, each replayed against the real app (or the real connector
and a real local SMTP/HTTP server) and each closed."""
from __future__ import annotations

import http.server
import io
import logging
import re
import threading
import time

import pytest
import requests

from connectors.email.smtp import SmtpEmail
from connectors.model import Message
from plugin import create_app
from plugin.api.page_auth import signed_link
from plugin.errors import SettingsError
from plugin.observability import logs
from tests.connectors.conftest import FakeTime
from tests.connectors.test_smtp import smtp_server, trusted_local_server  # noqa: F401  (a real aiosmtpd server on 127.0.0.1, trusted as an operator would)
from tests.helpers import API_KEY, WEBHOOK_SECRET, bearer, post_signed
from tests.plugin import campaign_data as cd
from tests.plugin.hosting import install

BASE = "https://likely.example"


def link(next_path: str, secret: str = WEBHOOK_SECRET, workspace: str = "default") -> str:
    return signed_link(secret, workspace, int(time.time()) + 300, next_path)


# -- sign-in -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("next_path", ["/predictions\r\nSet-Cookie: likely_session=attacker",
                                       "/predictions\nX-Injected: 1", "/pred\x7fictions"])
def test_a_control_character_in_next_is_not_followed_and_not_a_500(client, next_path):
    response = client.get(link(next_path), base_url=BASE)
    assert response.status_code == 200  # signed in, shown the notice, not redirected
    assert "X-Injected" not in response.headers and "Location" not in response.headers


def form_token(client) -> str:
    page = client.get("/login", base_url=BASE).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_a_cross_site_login_post_does_not_sign_the_victim_in(client):
    """Login CSRF: another site's auto-submitting form posts the attacker's own key."""
    forged = client.post("/login", data={"api_key": API_KEY, "next": "/predictions"}, base_url=BASE,
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert client.get("/predictions", base_url=BASE).status_code == 302  # still not signed in
    genuine = client.post("/login", data={"api_key": API_KEY, "next": "/predictions",
                                          "csrf_token": form_token(client)}, base_url=BASE)
    assert genuine.status_code == 302 and client.get("/predictions", base_url=BASE).status_code == 200


def test_rotating_a_workspaces_credentials_ends_its_page_sessions(hosted_app):
    client = hosted_app.test_client()
    first = install(client, slug="acme", settings={}).json["credentials"]
    assert client.get(link("/predictions", first["webhook_secret"], "acme"), base_url=BASE).status_code == 302
    assert client.get("/predictions", base_url=BASE).status_code == 200
    rotated = install(client, slug="acme", settings={}, rotate_credentials=True)
    assert rotated.status_code == 200 and rotated.json["credentials"]["api_key"] != first["api_key"]
    assert client.get("/predictions", base_url=BASE).status_code == 302  # back to the sign-in form


@pytest.mark.parametrize("path", ["/login", "/predictions"])
def test_pages_send_nosniff_a_referrer_policy_and_a_script_policy(client, path):
    client.get(link("/predictions"), base_url=BASE)
    response = client.get(path, base_url=BASE)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    policy = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy


def test_the_sign_in_page_has_the_pages_head_so_no_favicon_request(client):
    html = client.get("/login", base_url=BASE).get_data(as_text=True)
    assert '<link rel="icon" href="data:,">' in html  # Chromium asks for /favicon.ico without one
    assert '<meta charset="utf-8">' in html and "likely.css" in html


# -- webhooks ----------------------------------------------------------------------------------------
def test_a_webhook_id_reused_on_another_endpoint_is_not_a_duplicate(client, engine):
    event = {"events": [{"user_id": "u1", "event": "purchase", "timestamp": "2026-01-01T00:00:00Z"}]}
    first = post_signed(client, "/webhooks/events", event, webhook_id="msg_shared")
    second = post_signed(client, "/webhooks/users", {"users": [{"user_id": "u9", "attributes": {"plan": "pro"}}]},
                         webhook_id="msg_shared")
    assert first.status_code == 200 and second.status_code == 200, second.json
    assert second.json["duplicate"] is False and second.json["written"] == 1
    again = post_signed(client, "/webhooks/users", {"users": [{"user_id": "u9", "attributes": {"plan": "pro"}}]},
                        webhook_id="msg_shared")
    assert again.json["duplicate"] is True  # same endpoint, same id: still idempotent


# -- start-up ----------------------------------------------------------------------------------------
def test_a_bad_database_urls_password_is_not_echoed_at_start_up():
    with pytest.raises(SettingsError) as error:
        create_app({"database_url": "postgres://likely:hunter2-Secret-99@db.internal/likely"})
    assert "hunter2-Secret-99" not in str(error.value)
    assert "LIKELY_DATABASE_URL" in str(error.value)


def test_an_open_metrics_endpoint_is_refused_in_production_and_warned_about_otherwise(app_settings, caplog):
    with pytest.raises(SettingsError) as error:
        create_app({**app_settings, "environment": "production"})
    assert "LIKELY_METRICS_TOKEN" in str(error.value)
    with caplog.at_level(logging.WARNING):
        app = create_app(app_settings)
    assert any("/metrics is OPEN" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert app.test_client().get("/metrics").status_code == 200  # development: open, but said so
    app.extensions["likely_engine"].dispose()
    app = create_app({**app_settings, "environment": "production", "metrics_token": "m" * 32})
    assert app.test_client().get("/metrics").status_code == 401
    app.extensions["likely_engine"].dispose()


# -- exports -----------------------------------------------------------------------------------------
def test_csv_exports_never_hold_a_spreadsheet_formula(client, engine):
    ws = cd.workspace_id(engine)
    pid = cd.add_prediction(engine, ws)
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "plain"]
    ids = cd.add_users(engine, ws, [(ext, {}) for ext in hostile])
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    made = client.post("/v1/segments", json={"name": "all", "definition": {
        "filter": "event_likelihood_score", "prediction": pid, "gte": 0}}, headers=bearer())
    assert made.status_code == 201, made.json
    body = client.get(f"/v1/segments/{made.json['id']}/members?format=csv", headers=bearer()).get_data(as_text=True)
    cells = [line.strip('"').replace('""', '"') for line in body.split("\r\n")[1:] if line]
    assert sorted(cells) == sorted(["'" + h if h != "plain" else h for h in hostile])
    assert not any(cell[:1] in "=+-@\t" for cell in cells)


# -- connectors and logs -------------------------------------------------------------------------------
def test_a_line_break_in_one_messages_header_skips_that_message_only(smtp_server, trusted_local_server):  # noqa: F811
    handler, port = smtp_server
    handler.reset()
    connector = SmtpEmail({"host": "127.0.0.1", "port": port, "security": "none", "from_email": "news@shop.example",
                           "messages_per_connection": 100}, **FakeTime().kwargs())

    def message(i: int, subject: str) -> Message:
        return Message(idempotency_key=f"k{i}", recipient_id=f"u{i}", address=f"u{i}@example.com",
                       subject=subject, text="Hello", html="<b>Hello</b>", unsubscribe_url="https://l.example/u")
    batch = [message(0, "Hi Ann"), message(1, "Hi Bob\r\nBcc: victim@example.com"), message(2, "Hi Cy")]
    results = {r.key: r for r in connector.send(batch)}
    assert (results["k0"].status, results["k2"].status) == ("sent", "sent")
    assert results["k1"].status == "failed" and not results["k1"].retryable
    assert results["k1"].reason.startswith("invalid_message")
    assert sorted(rcpt for _, rcpts, _ in handler.received for rcpt in rcpts) == ["u0@example.com", "u2@example.com"]


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_debug_logs_of_the_http_client_do_not_carry_url_tokens():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stream = io.StringIO()
    handler = logs.configure("DEBUG", stream)
    try:
        requests.get(f"http://127.0.0.1:{server.server_port}/v1/hook?key=AIzaSyTopSecret123&sig=s3cr3tSig99",
                     timeout=5)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        server.shutdown()
    output = stream.getvalue()
    assert "/v1/hook?key=***&sig=***" in output  # the line is there, its values are not
    assert "AIzaSyTopSecret123" not in output and "s3cr3tSig99" not in output
