"""Serving load: signed event batches and authenticated audience previews on `likely serve`
(gunicorn, 2 workers) vs a bare Flask app.

Starts gunicorn on 127.0.0.1 (a free port) over a temporary SQLite store, and over a fresh
PostgreSQL database when one is reachable (LIKELY_BENCH_POSTGRES_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test; dropped afterwards). Each store first gets
--users scored users (bench/audiences.py's loader); the preview scenario targets the score range
60-100 of that prediction. Each scenario is a closed loop of a few client threads for a fixed
time; nothing runs longer than the phases.

Targets: previews >= 25 % of the hello baseline's req/s; every scenario p99 <= 50 ms and zero
errors. A signed event batch is committed durably before its 2xx, so its rate is reported
against the baseline but judged by latency and errors only.

    python bench/serve.py [--seconds 10] [--workers 2] [--clients 2] [--threads 2] [--batch 10] [--backend sqlite|postgresql|all]
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import API_KEY, WEBHOOK_SECRET, signed_headers  # noqa: E402

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"  # never anything else
EVENTS = ["session_start", "view_item", "add_to_cart", "purchase", "search"]
TARGET_RATIO, TARGET_P99_MS = 0.25, 50.0
PREVIEW_PATH = "/v1/audiences/preview"
PREVIEW_BODY = {"definition": {"filter": "event_likelihood_score", "prediction": 1, "gte": 60, "lte": 100}}


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_ready(port: int, path: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up")


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


# --- the load generator: client processes x threads, closed loop, fixed duration ---------

def _event_batch(rng: random.Random, size: int) -> str:
    now = int(time.time())
    return json.dumps({"events": [{"user_id": f"bench-{rng.randrange(10_000)}", "event": rng.choice(EVENTS),
                                   "timestamp": now - rng.randrange(30 * 86400), "properties": {"n": i}}
                                  for i in range(size)]})


def _request(kind: str, rng: random.Random, batch: int) -> tuple[str, str, str | None, dict]:
    if kind == "hello":
        return "GET", "/", None, {}
    if kind == "events":
        body = _event_batch(rng, batch)
        return "POST", "/webhooks/events", body, signed_headers(body)  # a fresh webhook-id each
    body = json.dumps(PREVIEW_BODY)
    return "POST", PREVIEW_PATH, body, {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


def _client(args: tuple) -> tuple[list[float], int]:
    import threading
    port, kind, seconds, threads, batch, seed = args
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(thread_seed: int) -> None:
        rng = random.Random(thread_seed)
        mine, failed = [], 0
        while time.monotonic() < deadline:
            method, path, body, headers = _request(kind, rng, batch)  # signing is not timed
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                ok = 200 <= response.status < 300
            except OSError:
                ok = False
            mine.append(time.perf_counter() - started)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    workers = [threading.Thread(target=loop, args=(seed * 100 + i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]


def load(name: str, port: int, kind: str, seconds: float, clients: int, threads: int, batch: int) -> Result:
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(_client, [(port, kind, 1.0, threads, batch, 1000 + c) for c in range(clients)])  # warm-up
        started = time.perf_counter()
        parts = pool.map(_client, [(port, kind, seconds, threads, batch, c) for c in range(clients)])
        elapsed = time.perf_counter() - started
    latencies = sorted(latency for part, _ in parts for latency in part)
    errors = sum(e for _, e in parts)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return Result(name, len(latencies), errors, elapsed, statistics.median(latencies) * 1000 if latencies else 0,
                  p99 * 1000)


def seed_scored_users(url: str, users: int) -> None:
    """The audience benchmark's store: users with attributes and events, one scored prediction."""
    spec = importlib.util.spec_from_file_location("bench_audiences", Path(__file__).with_name("audiences.py"))
    audiences = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audiences)
    audiences.load(url, users, audiences.synthesize(users))


def check_preview(port: int) -> None:
    """One preview must answer 200 before it is loaded: a bench of 400s measures nothing."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    conn.request("POST", PREVIEW_PATH, body=json.dumps(PREVIEW_BODY),
                 headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{PREVIEW_PATH} answered {response.status}: {body[:300]!r}")
    print(f"preview of score 60-100: {json.loads(body)['summary']}", file=sys.stderr)


# --- scenarios ------------------------------------------------------------------------------

def bench_hello(tmp: Path, args) -> Result:
    port = free_port()
    server = start([str(BIN / "gunicorn"), "--workers", str(args.workers), "--bind", f"{HOST}:{port}", "bench.hello:app"],
                   {**os.environ, "PYTHONPATH": str(ROOT)}, tmp / "hello.log")
    try:
        wait_ready(port, "/")
        return load("hello (bare Flask)", port, "hello", args.seconds, args.clients, args.threads, args.batch)
    finally:
        stop(server)


def bench_likely(backend: str, url: str, tmp: Path, args) -> tuple[list[Result], list[str]]:
    seed_scored_users(url, args.users)  # upgrades the schema first
    port = free_port()
    env = {**os.environ, "LIKELY_DATABASE_URL": url, "LIKELY_WEBHOOK_SECRETS": WEBHOOK_SECRET,
           "LIKELY_API_KEYS": API_KEY, "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"metrics-{backend}")}
    server = start([str(BIN / "likely"), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)], env,
                   tmp / f"likely-{backend}.log")
    notes, results = [], []
    try:
        wait_ready(port, "/healthz")
        results.append(load(f"signed events ({backend}, {args.batch}/batch)", port, "events", args.seconds,
                            args.clients, args.threads, args.batch))
        check_preview(port)
        results.append(load(f"audience preview ({backend})", port, "preview", args.seconds, args.clients,
                            args.threads, args.batch))
    finally:
        stop(server)
    return results, notes


def postgres_url() -> tuple[str, str, object] | None:
    server = os.environ.get("LIKELY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    if make_url(server).host not in (HOST, "localhost"):
        return None  # the bench only ever talks to this machine
    try:
        admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"likely_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        print(f"PostgreSQL not reachable ({type(error).__name__}); SQLite only")
        return None
    return make_url(server).set(database=name).render_as_string(hide_password=False), name, admin


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, for both apps")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per load-generator process")
    parser.add_argument("--batch", type=int, default=10, help="events per signed webhook batch")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--users", type=int, default=100_000, help="scored users in each store")
    args = parser.parse_args()
    results, notes = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        baseline = bench_hello(tmp, args)
        results.append(baseline)
        if args.backend in ("sqlite", "all"):
            found, more = bench_likely("sqlite", f"sqlite:///{tmp}/bench.sqlite", tmp, args)
            results += found
            notes += more
        if args.backend in ("postgresql", "all") and (pg := postgres_url()):
            url, name, admin = pg
            try:
                found, more = bench_likely("postgresql", url, tmp, args)
                results += found
                notes += more
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(f"\nserving benchmark: gunicorn {args.workers} sync workers on {HOST}; {args.clients} client processes x "
          f"{args.threads} threads, {args.seconds:g} s per scenario; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end (other work on the machine slows both apps)")
    print(f"{'scenario':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs hello':>10}  verdict")
    missed = False
    for result in results:
        ratio = result.rps / baseline.rps
        if result is baseline:
            verdict = "baseline"
        else:
            fast_enough = ratio >= TARGET_RATIO or result.name.startswith("signed events")
            ok = fast_enough and result.p99_ms <= TARGET_P99_MS and result.errors == 0
            missed |= not ok
            verdict = "meets targets" if ok else "MISSES targets"
        print(f"{result.name:<38}{result.rps:>9,.0f}{result.p50_ms:>9.1f}{result.p99_ms:>9.1f}{result.errors:>8}"
              f"{ratio:>9.0%}  {verdict}")
    print(f"targets: previews >= {TARGET_RATIO:.0%} of hello req/s; all p99 <= {TARGET_P99_MS:g} ms, 0 errors")
    for note in notes:
        print("note:", note)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
