"""Ingest throughput: CLI import of 1,000,000 events and signed 1,000-event webhook batches.

Runs on SQLite (a temp file) and PostgreSQL (a fresh database on LIKELY_BENCH_POSTGRES_URL,
default postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped afterwards).
Targets on a 2-core machine: import >= 50,000 events/s, webhooks >= 10,000 events/s.

    python bench/ingest.py [--events 1000000] [--webhook-batches 100] [--backend sqlite|postgresql|all]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugin import create_app  # noqa: E402
from plugin.store.migrate import upgrade  # noqa: E402
from tests.helpers import WEBHOOK_SECRET, signed_headers  # noqa: E402

EVENT_NAMES = ["session_start", "view_item", "add_to_cart", "purchase", "search", "open_push",
               "open_email", "wishlist"]
START = 1_780_000_000


def generate_csv(path: Path, count: int, users: int) -> None:
    rng = random.Random(7)
    with open(path, "w") as out:
        out.write("user_id,event,timestamp,value\n")
        for i in range(count):
            name = EVENT_NAMES[rng.randrange(len(EVENT_NAMES))]
            value = f"{rng.uniform(5, 200):.2f}" if name == "purchase" else ""
            out.write(f"user-{rng.randrange(users)},{name},{START + i * 7},{value}\n")


def webhook_batches(batches: int, size: int, users: int) -> list[str]:
    rng = random.Random(11)
    bodies = []
    for b in range(batches):
        rows = [{"user_id": f"hook-{rng.randrange(users)}", "event": EVENT_NAMES[rng.randrange(8)],
                 "timestamp": START + b * size + i, "properties": {"n": i}} for i in range(size)]
        bodies.append(json.dumps({"events": rows}))
    return bodies


def bench_backend(name: str, url: str, csv_path: Path, events: int, batches: int) -> dict:
    upgrade(url)
    env = {**os.environ, "LIKELY_DATABASE_URL": url}
    likely = Path(sys.executable).parent / "likely"
    started = time.perf_counter()
    result = subprocess.run([str(likely), "import", "events", str(csv_path), "--json"], env=env,
                            capture_output=True, text=True, check=True)
    import_seconds = time.perf_counter() - started
    report = json.loads(result.stdout)
    assert report["written"] == events, report

    app = create_app({"database_url": url, "webhook_secrets": [WEBHOOK_SECRET]})
    client = app.test_client()
    bodies = webhook_batches(batches, 1000, 50_000)
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/webhooks/events", data=body, headers=signed_headers(body))
        assert response.status_code == 200, response.json
    webhook_seconds = time.perf_counter() - started
    app.extensions["likely_engine"].dispose()
    return {"backend": name, "import_events_per_s": events / import_seconds, "import_seconds": import_seconds,
            "webhook_events_per_s": batches * 1000 / webhook_seconds, "webhook_seconds": webhook_seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--webhook-batches", type=int, default=100)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    args = parser.parse_args()
    pg_server = os.environ.get("LIKELY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "events.csv"
        generate_csv(csv_path, args.events, args.users)
        if args.backend in ("sqlite", "all"):
            results.append(bench_backend("sqlite", f"sqlite:///{tmp}/bench.sqlite", csv_path, args.events,
                                         args.webhook_batches))
        if args.backend in ("postgresql", "all"):
            db = f"likely_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            try:
                url = make_url(pg_server).set(database=db).render_as_string(hide_password=False)
                results.append(bench_backend("postgresql", url, csv_path, args.events, args.webhook_batches))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                admin.dispose()
    print(f"\ningest benchmark: {args.events:,} events imported by CLI; {args.webhook_batches} signed "
          f"webhook batches of 1,000 events")
    print(f"{'backend':<12}{'import ev/s':>14}{'target':>10}{'webhook ev/s':>15}{'target':>10}")
    for r in results:
        print(f"{r['backend']:<12}{r['import_events_per_s']:>14,.0f}{'50,000':>10}"
              f"{r['webhook_events_per_s']:>15,.0f}{'10,000':>10}")


if __name__ == "__main__":
    main()
