"""Prediction benchmark: feature build, training, scoring and score writes at scale (not a test).

Default: 1,000,000 users with ~10,000,000 events, on SQLite (a temp file) and PostgreSQL (a fresh
database on LIKELY_BENCH_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test,
dropped afterwards). The data is generated with numpy and bulk-loaded straight into the tables
(loading is not what is measured). Each stage runs in its own process, so its peak memory
(ru_maxrss) is its own; numpy's share of it is also traced (tracemalloc).

    python bench/predict.py [--users 1000000] [--events-per-user 10] [--backend sqlite|postgresql|all]

Targets on a 2-core machine: training <= 60 s; full rescoring <= 30 s end to end; the scoring
stage >= 0.8x LightGBM's bare Booster.predict throughput on the same matrix; peak memory
bounded by the chunk size, not the number of users.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from predict_data import load_data  # noqa: E402

DAY = 86_400
AS_OF = 1_790_000_000 // DAY * DAY
WINDOW = 14


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    fork and exec, so a stage would inherit the data generator's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stage(name: str, url: str, prediction_id: int, chunk_users: int) -> dict:
    """One measured stage, in this (child) process."""
    from plugin.predictions import categories, definitions, features, models, scoring, training
    from plugin.predictions.columns import prefetch
    from plugin.predictions.reader import read_chunks
    from plugin.store import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        prediction = definitions.get(conn, 1, prediction_id)
    tracemalloc.start()
    result: dict = {"stage": name}
    options = training.TrainingOptions(chunk_users=chunk_users)
    if name == "train":
        started = time.perf_counter()
        data = training.training_set(engine, prediction, AS_OF, chunk_users, snapshots=options.snapshots,
                                     older_rows=options.max_train_users)
        result["features_s"] = time.perf_counter() - started
        result["training_rows"], result["features"] = data.matrix.shape
        result["positives"] = int(data.labels.sum())
        fit_started = time.perf_counter()
        model_id = training.fit(engine, prediction, AS_OF, data, options)
        result["fit_s"] = time.perf_counter() - fit_started
        result["train_total_s"] = time.perf_counter() - started
        with engine.connect() as conn:
            model = models.load(conn, model_id)
        result.update(rounds=model.counts["rounds"], quality=model.metrics["prediction_quality"],
                      auc=model.metrics["auc"])
    elif name == "score":
        started = time.perf_counter()
        summary = scoring.score(engine, prediction, AS_OF + DAY, chunk_users=chunk_users)
        result["score_total_s"] = time.perf_counter() - started
        result["users_scored"] = summary["users_scored"]
        result["timings"] = summary["timings"]
    elif name == "baseline":
        with engine.connect() as conn:
            model = models.current(conn, prediction)
        parts = []
        for chunk in prefetch(read_chunks(engine, prediction, model.spec, AS_OF + DAY, AS_OF + DAY, chunk_users)):
            computed = features.compute(chunk, model.spec, AS_OF + DAY)
            parts.append(computed.matrix[computed.has_history])
        matrix = np.vstack(parts)
        bounds = categories.resolve_bounds(prediction.categories)
        bare, ours = [], []
        for _ in range(3):  # alternated and repeated; the best of each, so a busy moment does not decide
            started = time.perf_counter()
            model.booster.predict(matrix)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            for start in range(0, len(matrix), chunk_users):  # as scoring does it: chunk by chunk
                categories.assign(model.scores(matrix[start:start + chunk_users]), bounds)
            ours.append(time.perf_counter() - started)
        result.update(rows=len(matrix), bare_predict_s=min(bare), scoring_stage_s=min(ours),
                      ratio=min(bare) / min(ours))
    result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    result["peak_rss_mb"] = peak_rss_mb()
    engine.dispose()
    return result


def child(name: str, url: str, prediction_id: int, chunk_users: int) -> dict:
    output = subprocess.run([sys.executable, __file__, "--stage", name, "--url", url, "--prediction-id",
                             str(prediction_id), "--chunk-users", str(chunk_users)],
                            capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(f"stage {name} failed:\n{output.stderr[-4000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench_backend(backend: str, url: str, users: int, events_per_user: int, chunk_users: int) -> dict:
    from plugin.predictions import definitions
    from plugin.store import make_engine, transaction
    from plugin.store.migrate import upgrade
    upgrade(url)
    started = time.perf_counter()
    events = load_data(url, users, events_per_user, AS_OF + DAY)
    print(f"[{backend}] loaded {users:,} users and {events:,} events in {time.perf_counter() - started:.0f} s",
          flush=True)
    engine = make_engine(url)
    with transaction(engine) as conn:
        prediction = definitions.create(conn, 1, {"name": "purchase in 14 days", "goal_event": "purchase",
                                                  "window_days": WINDOW}, max_active=5)
    engine.dispose()
    results = {"backend": backend, "events": events}
    for name in ("train", "score", "baseline"):
        results[name] = child(name, url, prediction.id, chunk_users)
        print(f"[{backend}] {name}: {json.dumps(results[name])}", flush=True)
    small = child("score", url, prediction.id, chunk_users // 5)
    results["score_small_chunks"] = small
    print(f"[{backend}] score with chunks of {chunk_users // 5}: {json.dumps(small)}", flush=True)
    return results


def report(results: list[dict], users: int, chunk_users: int) -> None:
    print(f"\nprediction benchmark: {users:,} users, chunks of {chunk_users:,} users, {os.cpu_count()} cores")
    rows = [
        ("feature build (training set)", lambda r: f"{r['train']['features_s']:.1f} s", "-"),
        ("training, end to end", lambda r: f"{r['train']['train_total_s']:.1f} s", "<= 60 s"),
        ("  of which LightGBM + calibration + metrics", lambda r: f"{r['train']['fit_s']:.1f} s", "-"),
        ("full rescoring, end to end", lambda r: f"{r['score']['score_total_s']:.1f} s", "<= 30 s"),
        ("  waiting for data / features / predict",
         lambda r: "{waiting_for_data:.1f} / {features:.1f} / {predict:.1f} s".format(**r["score"]["timings"]), "-"),
        ("  score writes: history / swap",
         lambda r: "{history:.1f} / {swap:.1f} s".format(**r["score"]["timings"]), "-"),
        ("scoring stage vs bare Booster.predict",
         lambda r: f"{r['baseline']['ratio']:.2f}x ({r['baseline']['scoring_stage_s']:.2f} vs "
                   f"{r['baseline']['bare_predict_s']:.2f} s)", ">= 0.8x"),
        ("scoring peak RSS / numpy traced",
         lambda r: f"{r['score']['peak_rss_mb']:.0f} / {r['score']['traced_peak_mb']:.0f} MB", "chunk-bound"),
        (f"  same with chunks of {chunk_users // 5:,}",
         lambda r: f"{r['score_small_chunks']['peak_rss_mb']:.0f} / "
                   f"{r['score_small_chunks']['traced_peak_mb']:.0f} MB", "smaller"),
        ("training peak RSS", lambda r: f"{r['train']['peak_rss_mb']:.0f} MB", "-"),
        ("test-set Prediction Quality / AUC",
         lambda r: f"{r['train']['quality']:.1f} / {r['train']['auc']:.3f}", "-"),
    ]
    header = f"{'':<44}" + "".join(f"{r['backend']:>30}" for r in results) + f"{'target':>14}"
    print(header)
    for label, cell, target in rows:
        print(f"{label:<44}" + "".join(f"{cell(r):>30}" for r in results) + f"{target:>14}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events-per-user", type=int, default=10)
    parser.add_argument("--chunk-users", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prediction-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.url, args.prediction_id, args.chunk_users)))
        return
    pg_server = os.environ.get("LIKELY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "all"):
            results.append(bench_backend("sqlite", f"sqlite:///{tmp}/bench.sqlite", args.users,
                                         args.events_per_user, args.chunk_users))
        if args.backend in ("postgresql", "all"):
            db = f"likely_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            try:
                url = make_url(pg_server).set(database=db).render_as_string(hide_password=False)
                results.append(bench_backend("postgresql", url, args.users, args.events_per_user, args.chunk_users))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                admin.dispose()
    report(results, args.users, args.chunk_users)


if __name__ == "__main__":
    main()
