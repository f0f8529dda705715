"""Prediction quality on real purchase data: our CLI pipeline beside BG/NBD and LightGBM-RFM.

The CDNOW purchases (23,570 customers, 1997-01-01 to 1998-06-30; `bench/cdnow.py`) are imported
with `likely import events` into a fresh SQLite store, and for each as-of date D a prediction
"purchase within 60 days" is created, trained (`likely train --as-of D`: features one window
before D, labels up to D), scored (`likely score --as-of D`) and exported (`likely export
scores`) — exactly as a user runs it. Every customer with a purchase up to D is scored, and the
scores are compared with what customers did in (D, D + 60 days]. The two baselines
(`bench/baselines.py`) are computed in the same run on the same customers.

    pip install -e '.[bench]' && python bench/quality.py [--dates 1997-08-01,...] [--window-days 60]

Printed per date and method: AUC, Brier score, mean gap (mean predicted − observed rate, in
percentage points) and the worst calibration bin (the largest |predicted − observed| over ten
equal-size bins of predicted probability). Targets: our AUC ≥ the better baseline's at every
date, and |mean gap| ≤ 1.5 pp at every date.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402
import cdnow  # noqa: E402

from plugin.predictions.quality import auc, brier  # noqa: E402

DATES = ["1997-08-01", "1997-10-01", "1997-12-01", "1998-02-01", "1998-04-01"]
MAX_GAP_PP = 1.5
BINS = 10


def likely(*args: str, env: dict) -> str:
    command = [str(Path(sys.executable).parent / "likely"), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def our_scores(env: dict, date: str, window_days: int, workdir: Path) -> tuple[dict[str, float], dict]:
    """Scores (probabilities) per customer id from the CLI pipeline, and the model's summary."""
    name = f"purchase-{date}"
    likely("predictions", "create", "--name", name, "--event", "purchase", "--window-days", str(window_days),
           "--status", "preview", "--json", env=env)
    model = json.loads(likely("train", name, "--as-of", date, "--json", env=env))
    likely("score", name, "--as-of", date, "--json", env=env)
    out = workdir / f"{name}.csv"
    likely("export", "scores", name, "--output", str(out), env=env)
    with open(out, newline="") as handle:
        return {row["user_id"]: float(row["score"]) / 100.0 for row in csv.DictReader(handle)}, model


def figures(labels: np.ndarray, probability: np.ndarray) -> dict:
    order = np.argsort(probability, kind="stable")
    bins = np.array_split(order, BINS)
    worst = max(abs(probability[b].mean() - labels[b].mean()) for b in bins if len(b))
    return {"auc": auc(labels, probability), "brier": brier(labels, probability),
            "gap_pp": 100 * (probability.mean() - labels.mean()), "worst_bin_pp": 100 * worst,
            "observed": labels.mean(), "predicted": probability.mean()}


def run(dates: list[str], window_days: int) -> list[dict]:
    purchases = cdnow.load()
    customers, index = purchases.customer_index()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "LIKELY_DATABASE_URL": f"sqlite:///{workdir}/quality.sqlite"}
        events_csv = workdir / "cdnow.csv"
        cdnow.write_events_csv(purchases, events_csv)
        likely("db", "upgrade", env=env)
        started = time.perf_counter()
        report = json.loads(likely("import", "events", str(events_csv), "--json", env=env))
        print(f"imported {report['written']:,} of {report['read']:,} purchases "
              f"({report['rejected']} rejected) in {time.perf_counter() - started:.0f} s", flush=True)
        for date in dates:
            as_of = cdnow.utc(date)
            started = time.perf_counter()
            scores, model = our_scores(env, date, window_days, workdir)
            pipeline_s = time.perf_counter() - started
            labels = baselines.bought(purchases, index, len(customers), as_of, as_of + window_days * cdnow.DAY)
            ours = np.array([scores.get(c, np.nan) for c in customers])
            bg = baselines.bg_nbd(purchases, customers, index, as_of, window_days)
            rfm = baselines.lightgbm_rfm(purchases, customers, index, as_of, window_days)
            scored = ~np.isnan(ours)
            row = {"date": date, "customers": int(scored.sum()), "pipeline_s": pipeline_s,
                   "test_quality": model["metrics"].get("prediction_quality"),
                   "calibration_error_pp": model["metrics"].get("expected_calibration_error_pp")}
            for method, values in (("likely", ours), ("BG/NBD", bg), ("LightGBM-RFM", rfm)):
                row[method] = figures(labels[scored], values[scored])
            results.append(row)
            print(json.dumps(row), flush=True)
    return results


def report(results: list[dict], window_days: int) -> bool:
    print(f"\nquality on CDNOW purchases, {window_days}-day window "
          f"({results[0]['customers']:,}–{results[-1]['customers']:,} customers scored per date)")
    print(f"{'as of':<12}{'method':<14}{'AUC':>7}{'Brier':>9}{'observed':>10}{'mean gap':>10}{'worst bin':>11}")
    ok = True
    for row in results:
        best_baseline = max(row["BG/NBD"]["auc"], row["LightGBM-RFM"]["auc"])
        for method in ("likely", "BG/NBD", "LightGBM-RFM"):
            f = row[method]
            print(f"{row['date']:<12}{method:<14}{f['auc']:>7.4f}{f['brier']:>9.4f}{100 * f['observed']:>9.1f}%"
                  f"{f['gap_pp']:>+9.2f}pp{f['worst_bin_pp']:>9.2f}pp")
        ours = row["likely"]
        auc_ok = ours["auc"] >= best_baseline
        gap_ok = abs(ours["gap_pp"]) <= MAX_GAP_PP
        ok = ok and auc_ok and gap_ok
        print(f"{'':<12}AUC vs better baseline {ours['auc'] - best_baseline:+.4f} ({'ok' if auc_ok else 'MISSED'}), "
              f"|gap| {abs(ours['gap_pp']):.2f} pp ≤ {MAX_GAP_PP} ({'ok' if gap_ok else 'MISSED'}); "
              f"pipeline {row['pipeline_s']:.0f} s")
    print("targets: " + ("met at every date" if ok else "MISSED at some date"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dates", default=",".join(DATES))
    parser.add_argument("--window-days", type=int, default=60)
    args = parser.parse_args()
    results = run(args.dates.split(","), args.window_days)
    sys.exit(0 if report(results, args.window_days) else 1)


if __name__ == "__main__":
    main()
