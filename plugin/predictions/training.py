"""Training: point-in-time features at cutoff = as_of − window, LightGBM, calibration, test metrics.

The model learns from the latest labelled window (cutoff = as_of − window) and, stacked under
it, the windows before (see `training_set`); it is calibrated and tested on the latest window
only, the one closest to the future it predicts.

Users are split by a hash of their id — 60 % train, 10 % early stopping, 15 % calibration,
15 % test — so the split is the same on every run and a user never moves between sets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import lightgbm as lgb
import numpy as np
from sqlalchemy import Engine, func, select

from plugin.errors import Conflict, Unprocessable
from plugin.predictions import calibration, features, models, quality, trainings
from plugin.predictions.columns import prefetch
from plugin.predictions.eligibility import DAY
from plugin.predictions.reader import DEFAULT_CHUNK_USERS, read_chunks, snapshot
from plugin.store import transaction
from plugin.store.tables import users

TRAIN, EARLY_STOP, CALIBRATE, TEST = 0, 1, 2, 3
TOP_IMPORTANCES = 15


@dataclass(frozen=True)
class TrainingOptions:
    min_positives: int = 100
    min_negatives: int = 100
    max_train_users: int = 250_000     # a uniform sample beyond this: calibration stays unbiased
    max_rounds: int = 400
    early_stopping_rounds: int = 20
    chunk_users: int = DEFAULT_CHUNK_USERS
    snapshots: int = 3                 # labelled windows stacked for training (see `training_set`)


def lightgbm_params(train_users: int) -> dict:
    return {"objective": "binary", "learning_rate": 0.1, "num_leaves": 31,
            "min_data_in_leaf": int(min(200, max(20, train_users // 500))), "feature_fraction": 0.9,
            "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "max_bin": 127,
            "cat_smooth": 10, "max_cat_to_onehot": 8, "seed": 7, "deterministic": True,
            "num_threads": os.cpu_count() or 1, "verbose": -1}


def split_of(user_ids: np.ndarray) -> np.ndarray:
    """TRAIN / EARLY_STOP / CALIBRATE / TEST per user, from a 64-bit mix of the id (splitmix64)."""
    h = _mix(user_ids)
    bucket = (h % np.uint64(100)).astype(np.int64)
    return np.select([bucket < 60, bucket < 70, bucket < 85], [TRAIN, EARLY_STOP, CALIBRATE], TEST)


def _mix(user_ids: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = user_ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass
class TrainingSet:
    spec: dict
    matrix: np.ndarray      # (rows, features)
    labels: np.ndarray
    user_ids: np.ndarray    # a user appears once per snapshot they are eligible in
    snapshot: np.ndarray    # 0 = the latest labelled window, k = k windows earlier


def training_set(engine: Engine, prediction: Any, as_of_ts: int, chunk_users: int = DEFAULT_CHUNK_USERS,
                 progress: Callable[[int], None] | None = None, snapshots: int = 1,
                 older_rows: int = 250_000) -> TrainingSet:
    """Eligible users' features and labels at cutoff = as_of − window (snapshot 0) and, with
    `snapshots` > 1, at cutoffs one, two, … windows earlier too (the same events read once).

    Older snapshots teach the model how users move from one window to the next across more
    moments than one (more rows, less dependence on one window's season); they only train
    (their test and calibration users are dropped) and are sampled to about `older_rows` rows
    each. With an audience tree, eligibility is the tree's as of the latest cutoff.
    """
    window = prediction.window_days * DAY
    cutoff = as_of_ts - window
    with snapshot(engine) as conn:
        spec = features.build_spec(conn, prediction, cutoff)
        total_users = conn.execute(select(func.count()).where(users.c.workspace_id == prediction.workspace_id)
                                   ).scalar_one()
    keep_share = min(1.0, older_rows / max(total_users, 1))
    parts = []
    for chunk in prefetch(read_chunks(engine, prediction, spec, cutoff, as_of_ts, chunk_users)):
        split = split_of(chunk.user_ids)
        sampled = (_mix(chunk.user_ids ^ np.int64(0x2545F491)) % np.uint64(1_000_000)).astype(np.float64) \
            < keep_share * 1_000_000
        for k in range(snapshots):
            at = cutoff - k * window
            computed = features.compute(chunk, spec, at, label_end_ts=at + window)
            keep = computed.has_history if chunk.eligible is None else chunk.eligible & computed.has_history
            if k:
                keep = keep & sampled & ((split == TRAIN) | (split == EARLY_STOP))
            parts.append((computed.matrix[keep], computed.labels[keep], chunk.user_ids[keep],
                          np.full(int(keep.sum()), k, dtype=np.int8)))
        if progress:
            progress(len(chunk.user_ids))
    width = len(features.columns(spec))
    if not parts:
        return TrainingSet(spec, np.empty((0, width), np.float32), np.empty(0, np.int8), np.empty(0, np.int64),
                           np.empty(0, np.int8))
    return TrainingSet(spec, np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                       np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))


def train(engine: Engine, prediction: Any, as_of_ts: int, options: TrainingOptions = TrainingOptions(),
          progress: Callable[[int], None] | None = None) -> int:
    """Train, calibrate, evaluate and store a new model version; return its id.

    Raises Unprocessable (code not_enough_data, with the counts) when the eligible users hold
    fewer converters or non-converters than the options require.
    """
    if prediction.status == "archived":
        raise Conflict("an archived prediction is not trained", code="prediction_archived")
    data = training_set(engine, prediction, as_of_ts, options.chunk_users, progress, options.snapshots,
                        options.max_train_users)
    return fit(engine, prediction, as_of_ts, data, options)


def fit(engine: Engine, prediction: Any, as_of_ts: int, data: TrainingSet,
        options: TrainingOptions = TrainingOptions()) -> int:
    """The model part of `train`, on a training set already built."""
    cutoff = as_of_ts - prediction.window_days * DAY
    spec, matrix, labels, user_ids = data.spec, data.matrix, data.labels, data.user_ids
    latest = data.snapshot == 0
    positives = int(labels[latest].sum())
    negatives = int(latest.sum() - positives)
    counts = {"eligible_users": int(latest.sum()), "positives": positives, "negatives": negatives,
              "cutoff": _iso(cutoff), "as_of": _iso(as_of_ts), "training_rows": int(len(labels)),
              "snapshots": int(data.snapshot.max()) + 1 if len(labels) else 0}
    if positives < options.min_positives or negatives < options.min_negatives:
        raise Unprocessable(
            f"not enough data to train: {positives} users performed {prediction.goal_event} within "
            f"{prediction.window_days} days of the cutoff and {negatives} did not; at least "
            f"{options.min_positives} and {options.min_negatives} are needed",
            code="not_enough_data",
            details={**counts, "min_positives": options.min_positives, "min_negatives": options.min_negatives})

    split = split_of(user_ids)
    train_rows = np.flatnonzero(split == TRAIN)
    if len(train_rows) > options.max_train_users:
        # Uniform (not class-balanced) so that raw outputs keep the true base rate.
        sample = np.argsort(_mix(user_ids[train_rows] ^ np.int64(0x5DEECE66D)))[:options.max_train_users]
        train_rows = np.sort(train_rows[sample])
    params = lightgbm_params(len(train_rows))
    categorical = features.categorical_indices(spec)
    train_set = lgb.Dataset(matrix[train_rows], labels[train_rows], categorical_feature=categorical,
                            free_raw_data=True)
    stop_rows = split == EARLY_STOP
    valid_set = lgb.Dataset(matrix[stop_rows], labels[stop_rows], reference=train_set)
    booster = lgb.train(params, train_set, num_boost_round=options.max_rounds, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(options.early_stopping_rounds, verbose=False)])

    # Calibrated and tested on the latest labelled window only: the one closest to the future.
    calibrate_rows = (split == CALIBRATE) & latest
    fitted = calibration.fit(booster.predict(matrix[calibrate_rows], raw_score=True), labels[calibrate_rows])
    test_rows = (split == TEST) & latest
    test_scores = models.score_from_margins(fitted, booster.predict(matrix[test_rows], raw_score=True))
    metrics = quality.evaluate(labels[test_rows], test_scores)
    metrics["feature_importance"] = importances(booster, features.columns(spec))
    counts.update({"train_users": int(len(train_rows)), "early_stopping_users": int(stop_rows.sum()),
                   "calibration_users": int(calibrate_rows.sum()), "test_users": int(test_rows.sum()),
                   "rounds": int(booster.best_iteration or booster.current_iteration())})
    with transaction(engine) as conn:
        model_id = models.save(conn, prediction, booster, fitted, spec, params, counts, metrics,
                               datetime.fromtimestamp(cutoff, timezone.utc))
        trainings.settle(conn, prediction.id, model_id)  # a training by hand answers a queued one too
        return model_id


def importances(booster: lgb.Booster, columns: list[dict]) -> list[dict]:
    """The features with the most total gain, as shares of all gain."""
    gain = booster.feature_importance(importance_type="gain")
    total = float(gain.sum()) or 1.0
    order = np.argsort(-gain, kind="stable")[:TOP_IMPORTANCES]
    return [{"feature": columns[i]["label"], "key": columns[i]["key"], "gain": float(gain[i]),
             "share": float(gain[i] / total)} for i in order if gain[i] > 0]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()
