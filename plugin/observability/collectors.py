"""Metrics read from the store at scrape time: outbox depth, score distribution, job runs.

Cached for a few seconds: a scrape every 15 s must not turn into a scan of the scores table
per web worker per scrape.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from plugin.store.tables import job_runs, predictions, scores, workspaces

log = logging.getLogger(__name__)

SCORE_BUCKETS = tuple(range(10, 101, 10))  # scores are 0–100
# The campaigns outbox (plugin/campaigns) is expected to be a table `outbox` with a `state`
# column (pending | sent | failed | dead …). Until it exists the gauge is simply absent.
OUTBOX_TABLE = "outbox"


class StoreCollector(Collector):
    def __init__(self, engine: Engine, ttl_seconds: float = 15.0,
                 clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._cached_at: float | None = None

    def collect(self):
        with self._lock:
            now = self._clock()
            if self._cached_at is None or now - self._cached_at >= self._ttl:
                self._cached = self._read()
                self._cached_at = now
            return list(self._cached)

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("likely_store_up", "1 if the store answered the metrics queries")
        try:
            with self._engine.connect() as conn:
                families = [*outbox_depth(conn), score_distribution(conn), *job_run_figures(conn)]
        except SQLAlchemyError as error:
            # A scrape must still answer (process metrics, store_up 0) when the store is down.
            log.warning("metrics could not read the store: %s", type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]


def outbox_depth(conn: Connection) -> list[Metric]:
    """Outbox messages by delivery status (pending, sending, sent, failed, dead, held…)."""
    from plugin.store.tables import outbox
    gauge = GaugeMetricFamily("likely_outbox_messages", "Outbox messages by state", labels=["state"])
    for state, count in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)):
        gauge.add_metric([str(state)], count)
    return [gauge]


def score_distribution(conn: Connection) -> Metric:
    """One histogram per prediction, built by the database in one pass over the scores."""
    histogram = HistogramMetricFamily("likely_prediction_scores",
                                      "Current scores (0-100) per prediction, bucketed by 10",
                                      labels=["workspace", "prediction"])
    cumulative = [func.sum(case((scores.c.score <= bound, 1), else_=0)) for bound in SCORE_BUCKETS]
    query = (select(workspaces.c.slug, scores.c.prediction_id, func.count(), func.sum(scores.c.score),
                    *cumulative)
             .join(predictions, predictions.c.id == scores.c.prediction_id)
             .join(workspaces, workspaces.c.id == predictions.c.workspace_id)
             .group_by(workspaces.c.slug, scores.c.prediction_id)
             .order_by(scores.c.prediction_id))
    for slug, prediction_id, total, total_score, *counts in conn.execute(query):
        buckets = [(str(float(bound)), int(count or 0)) for bound, count in zip(SCORE_BUCKETS, counts)]
        histogram.add_metric([slug, str(prediction_id)], buckets + [("+Inf", int(total))],
                             sum_value=float(total_score or 0))
    return histogram


def job_run_figures(conn: Connection) -> list[Metric]:
    """Across all scheduler processes, from the run log: alert on a kind that stopped succeeding."""
    last = GaugeMetricFamily("likely_job_last_finished_timestamp_seconds",
                             "When a job of this kind last finished with this outcome (Unix time)",
                             labels=["kind", "outcome"])
    for kind, outcome, finished in conn.execute(
            select(job_runs.c.kind, job_runs.c.outcome, func.max(job_runs.c.finished_at))
            .where(job_runs.c.finished_at.is_not(None)).group_by(job_runs.c.kind, job_runs.c.outcome)):
        last.add_metric([kind, outcome], finished.timestamp())
    running = GaugeMetricFamily("likely_job_runs_in_progress", "Job runs in progress by kind", labels=["kind"])
    for kind, count in conn.execute(select(job_runs.c.kind, func.count()).where(job_runs.c.outcome == "running")
                                    .group_by(job_runs.c.kind)):
        running.add_metric([kind], count)
    return [last, running]

