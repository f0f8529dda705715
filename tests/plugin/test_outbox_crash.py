"""kill -9 mid-delivery, then a restart: no message reaches the provider twice, none is lost.

A real worker process (`likely campaigns deliver`, its lease from LIKELY_OUTBOX_LEASE_SECONDS)
sends to a real HTTP server on 127.0.0.1 that answers like SendGrid and, like SendGrid, does
not de-duplicate: it records every personalization it receives, repeats included (Mail Send
takes no idempotency key: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send).
The server holds its answer to the third request until the test has killed the worker with
SIGKILL — so that batch was received by the provider but never recorded as sent. A restarted
worker finds it in flight once the lease has run out and settles it `unknown`: never sent
again, counted. Every other message is sent exactly once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from connectors import net
from plugin.campaigns import definitions, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.store.tables import outbox
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

USERS = 50
BATCH = 10
HOLD_AT = 3  # the request the worker dies waiting for
LEASE = 12  # LIKELY_OUTBOX_LEASE_SECONDS: shorter than the default, so the setting is what counts


class FakeSendgrid(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.keys: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: FakeSendgrid = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests += 1
            number = server.requests
            # Recorded on arrival: from here on the provider has the messages, answered or not.
            server.keys += [p["custom_args"]["likely_idempotency_key"] for p in body["personalizations"]]
        if number == HOLD_AT:
            server.holding.set()
            server.release.wait(60)
        self.send_response(202)
        self.send_header("X-Message-Id", f"msg-{number}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def provider():
    server = FakeSendgrid()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def trusted_fake_provider():
    """The fake provider on 127.0.0.1 is trusted as an operator trusts an emulator
    (LIKELY_OUTBOUND_ALLOWED_HOSTS); the worker process gets the same through its environment."""
    net.configure(["127.0.0.1"])
    yield
    net.configure()


def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_each_key_once(engine, database_url, provider):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": {**cd.SENDGRID, "base_url": provider.base_url}},
                    unsubscribe_url="https://shop.example/u/{user_id}")
    pid = cd.add_prediction(engine, ws)
    ids = cd.add_users(engine, ws, [(f"u{i}", {"email": f"u{i}@example.com"}) for i in range(USERS)])
    cd.add_scores(engine, ws, pid, {uid: 80.0 for uid in ids.values()})
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(
        cd.campaign_body(pid, tiers=[cd.email_tier("High", ["High"])])))
    runs.start_run(engine, ws, campaign["id"])

    worker = subprocess.Popen(
        [sys.executable, "-c", "from plugin.cli import main; main()", "campaigns", "deliver",
         "--worker-id", "victim", "--limit", str(BATCH)],
        # The fake provider is trusted as an operator trusts an emulator.
        env={**os.environ, "LIKELY_DATABASE_URL": database_url, "LIKELY_OUTBOX_LEASE_SECONDS": str(LEASE),
             "LIKELY_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert provider.holding.wait(120), worker.stderr.read1().decode() if worker.poll() is not None else ""
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
        provider.release.set()
    assert worker.returncode == -signal.SIGKILL

    with engine.connect() as conn:
        before = Counter(conn.execute(select(outbox.c.status)).scalars())
        expires = conn.execute(select(outbox.c.claim_expires).where(outbox.c.status == "sending")).scalars().all()
    assert before["sent"] == (HOLD_AT - 1) * BATCH
    assert before["sending"] == BATCH  # the held batch: marked in flight before it was sent
    assert max(expires) - int(time.time()) <= LEASE  # the setting's short lease, not 300 s

    # The restart: once the dead worker's lease has run out, another worker finishes the run.
    later = int(time.time()) + LEASE + 1
    while deliver_outbox(engine, "restarted", BATCH, now_ts=later).get("claimed"):
        pass

    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.idempotency_key, outbox.c.status)).all()
    arrived = Counter(provider.keys)
    assert len(rows) == USERS
    assert [k for k, n in arrived.items() if n > 1] == []            # 0 duplicates
    sent = {r.idempotency_key for r in rows if r.status == "sent"}
    unknown = {r.idempotency_key for r in rows if r.status == "unknown"}
    lost = {r.idempotency_key for r in rows} - sent - unknown
    assert lost == set()                                              # nothing lost outside `unknown`
    assert sent <= set(arrived)
    assert len(unknown) <= BATCH                                      # at most the one request in flight
    assert unknown <= set(arrived)  # here the provider had in fact received them: never sent again
