"""Audience benchmark: previews and member exports at 1,000,000 scored users, SQLite and PostgreSQL.

    python bench/audiences.py [--users 1000000] [--runs 50] [--backend sqlite|postgresql|both]

Builds its own stores (a SQLite file in a temporary directory; a fresh PostgreSQL database
`likely_bench_<x>` on postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped afterwards),
bulk-loads synthetic users, scores and events, then measures through the app (Flask test client):

- preview latency p50/p95 for a score range, a category and a 4-leaf tree (score, category,
  attribute, behaviour), each against the bare indexed SQL count on the same store;
- member export throughput (NDJSON and CSV streamed), and the time to materialise and refresh.

Targets: score-range preview p95 <= 25 ms and <= 5x the bare count; export >= 500,000 ids/s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugin import create_app  # noqa: E402
from plugin.audiences.compiler import compile_audience  # noqa: E402
from plugin.store import make_engine  # noqa: E402
from plugin.store.migrate import upgrade  # noqa: E402

PG_SERVER = os.environ.get("LIKELY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
API_KEY = "bench-api-key-0123456789"
DAY = 86_400
COUNTRIES = ["US", "FR", "DE", "GB", "ES", "IT", "BR", "IN", "JP", "CA"]
TARGET_P95_MS, TARGET_RATIO, TARGET_EXPORT = 25.0, 5.0, 500_000


def synthesize(n: int, seed: int = 7) -> dict:
    """Users, one prediction's scores (skewed low, like a rare goal) and purchase/view events."""
    rng = np.random.default_rng(seed)
    now = int(time.time())
    score = np.round(100 * rng.random(n) ** 3, 3)
    country = rng.integers(0, len(COUNTRIES), n)
    age = rng.integers(16, 80, n)
    has_email = rng.random(n) < 0.8
    consent = rng.random(n) < 0.9
    buyers = rng.random(n) < 0.25
    purchases_per = np.where(buyers, rng.integers(1, 4, n), 0)
    views_per = rng.integers(0, 3, n)
    return {"now": now, "score": score, "country": country, "age": age, "has_email": has_email,
            "consent": consent, "purchases_per": purchases_per, "views_per": views_per, "rng": rng}


def attributes(i: int, d: dict) -> str:
    attrs = {"country": COUNTRIES[d["country"][i]], "age": int(d["age"][i]), "plan": "pro" if i % 7 == 0 else "free"}
    if d["has_email"][i]:
        attrs["email"] = f"user{i}@example.com"
        attrs["email_consent"] = bool(d["consent"][i])
    return json.dumps(attrs, separators=(",", ":"))


def event_rows(d: dict):
    """(user index, type index, ts): purchases in the last 60 days, views in the last 30."""
    rng, now = d["rng"], d["now"]
    for type_index, per in ((1, d["purchases_per"]), (2, d["views_per"])):
        users = np.repeat(np.arange(len(per)), per)
        span = 60 if type_index == 1 else 30
        ages = rng.integers(0, span * DAY, len(users))
        # Keep purchases 3 hours clear of "30 days ago": the window moves while the bench runs,
        # and both backends should count the same audience.
        near = np.abs(ages - 30 * DAY) < 3 * 3600
        ages[near] += 6 * 3600
        stamps = now - ages
        yield from zip(users.tolist(), [type_index] * len(users), stamps.tolist())


def category(s: float) -> str:
    return "Low" if s < 50 else "Medium" if s < 75 else "High"


def curve() -> dict:
    thresholds = list(range(101))
    return {"test_users": 200_000, "test_positives": 6_000, "threshold_curve": {
        "thresholds": thresholds,
        "users_at_or_above": [round(200_000 * (1 - (t / 100) ** (1 / 3))) for t in thresholds],
        "positives_at_or_above": [round(6_000 * (1 - (t / 100) ** 0.8)) for t in thresholds],
        "expected_at_or_above": [round(6_100 * (1 - (t / 100) ** 0.8), 2) for t in thresholds]}}


def load(url: str, n: int, d: dict) -> None:
    """Bulk-load through the driver: COPY on PostgreSQL, one executemany transaction on SQLite."""
    upgrade(url)
    engine = make_engine(url)
    stamp = datetime.now(timezone.utc)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        postgres = engine.dialect.name == "postgresql"
        cur = raw.cursor()
        ws = 1
        created = stamp if postgres else stamp.replace(tzinfo=None).isoformat(sep=" ")
        users = ((i + 1, ws, f"host-{i:07d}", attributes(i, d), created, created) for i in range(n))
        scores = ((ws, 1, i + 1, float(d["score"][i]), category(d["score"][i]), 1, d["now"]) for i in range(n))
        events = ((ws, u + 1, t, ts, k) for k, (u, t, ts) in enumerate(event_rows(d), start=1))
        if postgres:
            copies = [("users (id, workspace_id, external_id, attributes, created_at, updated_at)", users),
                      ("scores (workspace_id, prediction_id, user_id, score, category, model_id, scored_at)", scores),
                      ("events (workspace_id, user_id, event_type_id, ts, event_key)", events)]
            for target, rows in copies:
                with cur.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.execute("SELECT setval('users_id_seq', %s)", (n,))
        else:
            cur.execute("BEGIN")
            cur.executemany("INSERT INTO users (id, workspace_id, external_id, attributes, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", users)
            cur.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", scores)
            cur.executemany("INSERT INTO events (workspace_id, user_id, event_type_id, ts, event_key) "
                            "VALUES (?, ?, ?, ?, ?)", events)
        raw.commit() if postgres else cur.execute("COMMIT")  # the driver's own transaction, not SQLAlchemy's
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO event_types (id, workspace_id, name) VALUES (1, 1, 'purchase'), (2, 1, 'view')"))
        conn.execute(text(
            "INSERT INTO predictions (id, workspace_id, name, goal_event, window_days, categories, schedule, "
            "retrain_days, status, current_model_id, created_at, updated_at, last_scored_at) VALUES "
            "(1, 1, 'purchase-14d', 'purchase', 14, '{}', 'daily', 15, 'active', 1, :t, :t, :t)"), {"t": stamp})
        conn.execute(text(
            "INSERT INTO prediction_models (id, workspace_id, prediction_id, version, created_at, cutoff_at, "
            "model_text, calibration, features, params, counts, metrics) VALUES "
            "(1, 1, 1, 1, :t, :t, '', :c, '{}', '{}', '{}', :m)"),
            {"t": stamp, "c": json.dumps({"method": "platt", "a": 1.0, "b": 0.0}), "m": json.dumps(curve())})
    # Planner statistics (and PostgreSQL's visibility map, for index-only scans) as an operator would have.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    engine.dispose()


def timed(call, runs: int) -> list[float]:
    for _ in range(3):
        call()  # warm caches and the population figure, as a marketer's first slider move does
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def bench_backend(name: str, url: str, n: int, runs: int) -> dict:
    app = create_app({"database_url": url, "api_keys": [API_KEY]})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    engine = app.extensions["likely_engine"]
    now = int(time.time())
    trees = {
        "score range": {"filter": "event_likelihood_score", "prediction": 1, "gte": 60, "lte": 100},
        "category": {"filter": "event_likelihood_category", "prediction": 1, "in": ["High"]},
        "4-leaf tree": {"all": [{"filter": "event_likelihood_score", "prediction": 1, "gte": 40},
                                {"filter": "event_likelihood_category", "prediction": 1, "in": ["Medium", "High"]},
                                {"filter": "attribute", "name": "country", "op": "in", "value": ["US", "FR"]},
                                {"filter": "performed", "event": "purchase", "within_days": 30}]},
    }
    bare = {
        "score range": text("SELECT count(*) FROM scores WHERE prediction_id = 1 AND score >= 60 AND score <= 100"),
        "category": text("SELECT count(*) FROM scores WHERE prediction_id = 1 AND category = 'High'"),
        "4-leaf tree": select(func.count()).select_from(compile_audience(trees["4-leaf tree"], 1, now).subquery()),
    }
    with engine.connect() as conn:  # a bench that measured an empty store would be worthless
        assert conn.execute(text("SELECT count(*) FROM scores")).scalar() == n, "the bulk load did not land"
    results = {}
    with engine.connect() as conn:
        for label, tree in trees.items():
            first = time.perf_counter()
            response = client.post("/v1/audiences/preview", json={"definition": tree}, headers=headers)
            cold = (time.perf_counter() - first) * 1000
            assert response.status_code == 200, response.json
            body = response.json
            repeat = runs if cold < 500 else max(10, runs // 5)  # seconds-long trees: fewer runs suffice
            api = timed(lambda tree=tree: client.post("/v1/audiences/preview", json={"definition": tree},
                                                      headers=headers), repeat)
            raw = timed(lambda label=label: conn.execute(bare[label]).scalar(), repeat)
            results[label] = {"size": body["size"], "cold_ms": cold, "p50": pct(api, 50), "p95": pct(api, 95),
                              "bare_p50": pct(raw, 50), "bare_p95": pct(raw, 95), "summary": body["summary"]}
    everyone = {"name": "everyone scored", "definition": {"filter": "event_likelihood_score", "prediction": 1, "gte": 0}}
    start = time.perf_counter()
    segment = client.post("/v1/segments", json=everyone, headers=headers).json
    results["materialise_s"] = time.perf_counter() - start
    for fmt in ("ndjson", "csv"):
        runs_s = []
        for _ in range(3):  # the first read of a fresh snapshot also pays for PostgreSQL's hint bits
            start = time.perf_counter()
            response = client.get(f"/v1/segments/{segment['id']}/members?format={fmt}", headers=headers,
                                  buffered=False)
            ids = sum(chunk.count(b"\n") for chunk in response.response) - (1 if fmt == "csv" else 0)
            runs_s.append(time.perf_counter() - start)
            response.close()
        results[f"export_{fmt}"] = {"ids": ids, "first_s": runs_s[0], "seconds": statistics.median(runs_s),
                                    "per_s": ids / statistics.median(runs_s), "first_per_s": ids / runs_s[0]}
    start = time.perf_counter()
    refreshed = client.post(f"/v1/segments/{segment['id']}/refresh", headers=headers).json
    results["refresh_s"] = time.perf_counter() - start
    results["refresh"] = (refreshed["added"], refreshed["removed"])
    engine.dispose()
    return results


def report(name: str, n: int, r: dict) -> bool:
    ok = True
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== {name}: {n:,} scored users (load average {load} on {os.cpu_count()} CPUs) ==")
    print(f"{'preview':<13}{'size':>9}{'p50 ms':>9}{'p95 ms':>9}{'bare p50':>10}{'bare p95':>10}"
          f"{'x p50':>7}{'x p95':>7}{'cold ms':>9}")
    for label in ("score range", "category", "4-leaf tree"):
        x = r[label]
        print(f"{label:<13}{x['size']:>9,}{x['p50']:>9.1f}{x['p95']:>9.1f}{x['bare_p50']:>10.1f}{x['bare_p95']:>10.1f}"
              f"{x['p50'] / x['bare_p50']:>7.1f}{x['p95'] / x['bare_p95']:>7.1f}{x['cold_ms']:>9.0f}")
    s = r["score range"]
    checks = [(f"score-range preview p95 {s['p95']:.1f} ms <= {TARGET_P95_MS:.0f} ms", s["p95"] <= TARGET_P95_MS),
              (f"score-range preview p95 / bare count p95 = {s['p95'] / s['bare_p95']:.1f} <= {TARGET_RATIO:.0f}",
               s["p95"] / s["bare_p95"] <= TARGET_RATIO)]
    for fmt in ("ndjson", "csv"):
        e = r[f"export_{fmt}"]
        checks.append((f"export {fmt}: {e['ids']:,} ids in {e['seconds']:.2f} s (median of 3) = {e['per_s']:,.0f} "
                       f"ids/s >= {TARGET_EXPORT:,} (first read: {e['first_per_s']:,.0f} ids/s)",
                       e["per_s"] >= TARGET_EXPORT))
    print(f"materialise a {r['export_ndjson']['ids']:,}-member segment: {r['materialise_s']:.1f} s; "
          f"refresh (added, removed = {r['refresh']}): {r['refresh_s']:.1f} s")
    print(f"summary: {s['summary']}")
    for label, passed in checks:
        print(f"  [{'PASS' if passed else 'FAIL'}] {label}")
        ok &= passed
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    started = time.perf_counter()
    data = synthesize(args.users)
    print(f"synthesised {args.users:,} users in {time.perf_counter() - started:.1f} s")
    ok = True
    if args.backend in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="likely_bench_")
        try:
            url = f"sqlite:///{folder}/likely.sqlite"
            started = time.perf_counter()
            load(url, args.users, data)
            print(f"sqlite: loaded in {time.perf_counter() - started:.1f} s")
            ok &= report("SQLite", args.users, bench_backend("sqlite", url, args.users, args.runs))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.backend in ("postgresql", "both"):
        name = f"likely_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
            started = time.perf_counter()
            load(url, args.users, data)
            print(f"postgresql: loaded in {time.perf_counter() - started:.1f} s")
            ok &= report("PostgreSQL", args.users, bench_backend("postgresql", url, args.users, args.runs))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
