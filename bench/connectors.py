"""Connector throughput against a local fake provider (127.0.0.1, threaded, 10 ms per request).

    python bench/connectors.py [--emails 20000] [--pushes 3000] [--concurrency 16]

Measures messages/s for SendGrid-style batched email (1,000 personalizations per request)
and for FCM-style push (one request per message, bounded thread pool, OAuth token from the
fake token endpoint). The script starts and stops its own server, stays on the loopback
interface and is bounded in time. Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import FcmPush, Message, SendgridEmail, net  # noqa: E402

LATENCY = 0.010
TARGETS = {"email": 5000.0, "push": 500.0}
TIME_LIMIT = 300  # seconds for the whole run, server included


class FakeProvider(BaseHTTPRequestHandler):
    """Answers like SendGrid, FCM and Google's token endpoint, after LATENCY seconds."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real providers
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall
    counts = {"mail": 0, "push": 0, "token": 0, "personalizations": 0}
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            self._reply(200, json.dumps(self.counts).encode())

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(LATENCY)
        if self.path == "/v3/mail/send":
            personalizations = len(json.loads(body)["personalizations"])
            self._count("mail", personalizations)
            self._reply(202, b"", {"X-Message-Id": f"bench-{time.monotonic_ns()}"})
        elif self.path.endswith("/messages:send"):
            self._count("push")
            self._reply(200, json.dumps({"name": f"projects/bench/messages/{time.monotonic_ns()}"}).encode())
        elif self.path == "/token":
            self._count("token")
            self._reply(200, json.dumps({"access_token": "bench-token", "expires_in": 3600,
                                         "token_type": "Bearer"}).encode())
        else:
            self._reply(404, b'{"error": "not found"}')

    def _count(self, what: str, personalizations: int = 0) -> None:
        with self.lock:
            self.counts[what] += 1
            self.counts["personalizations"] += personalizations

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the benchmark's output readable
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def serve(port_out) -> None:
    """The fake provider's process: its own interpreter, as a remote provider would be."""
    server = Server(("127.0.0.1", 0), FakeProvider)
    port_out.send(server.server_address[1])
    server.serve_forever()


def service_account(token_uri: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "bench", "private_key_id": "bench",
                       "private_key": pem, "client_email": "bench@bench.iam.gserviceaccount.com",
                       "token_uri": token_uri})


def bench_email(base: str, n: int) -> float:
    sender = SendgridEmail({"api_key": "SG.bench", "from_email": "bench@likely.example",
                            "base_url": base})
    messages = [Message(idempotency_key=f"e{i}", recipient_id=f"u{i}", address=f"user{i}@example.com",
                        subject=f"Your offer {i}", text=f"Hello {i}, 10% off this week.",
                        html=f"<p>Hello {i}, <b>10% off</b> this week.</p>",
                        unsubscribe_url=f"https://likely.example/u/{i}") for i in range(n)]
    started = time.perf_counter()
    results = sender.send(messages)
    elapsed = time.perf_counter() - started
    assert all(r.status == "sent" for r in results), "email: not every message was accepted"
    return n / elapsed


def bench_push(base: str, n: int, concurrency: int) -> float:
    pusher = FcmPush({"project_id": "bench", "service_account_json": service_account(f"{base}/token"),
                      "base_url": base, "concurrency": concurrency})
    messages = [Message(idempotency_key=f"p{i}", recipient_id=f"u{i}", address=f"token-{i}",
                        subject="Your offer", text="10% off this week", data={"tier": "High", "n": i})
                for i in range(n)]
    started = time.perf_counter()
    results = pusher.send(messages)
    elapsed = time.perf_counter() - started
    assert all(r.status == "sent" for r in results), "push: not every message was accepted"
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--pushes", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=16)  # FcmPush's default
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGALRM, lambda *_: (print("time limit reached", file=sys.stderr),
                                              sys.exit(2)))
    signal.alarm(TIME_LIMIT)

    receive, send = multiprocessing.Pipe(duplex=False)
    provider = multiprocessing.Process(target=serve, args=(send,), name="fake-provider", daemon=True)
    provider.start()
    try:
        if not receive.poll(30):
            raise RuntimeError("the fake provider did not start")
        base = f"http://127.0.0.1:{receive.recv()}"
        net.configure(["127.0.0.1"])  # the fake provider, trusted as an operator trusts an emulator
        figures = {"email": bench_email(base, args.emails),
                   "push": bench_push(base, args.pushes, args.concurrency)}
        import requests
        counts = requests.get(f"{base}/stats", timeout=5).json()
    finally:
        provider.terminate()
        provider.join(10)
        signal.alarm(0)

    print(f"fake provider: 127.0.0.1 (own process), {LATENCY * 1000:.0f} ms per request; "
          f"calls {counts}")
    failed = False
    for channel, label, n in (("email", "SendGrid batched email", args.emails),
                              ("push", f"FCM push (concurrency {args.concurrency})", args.pushes)):
        ok = figures[channel] >= TARGETS[channel]
        failed |= not ok
        print(f"{label:<34} {figures[channel]:>10,.0f} msg/s   target >= {TARGETS[channel]:,.0f}   "
              f"{'OK' if ok else 'MISSED'}   ({n:,} messages)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
