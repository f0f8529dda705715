"""Prometheus metrics: the process-local counters and histograms, and the scrape.

Under gunicorn every worker counts on its own; with PROMETHEUS_MULTIPROC_DIR set (before this
module is first imported — `likely serve` does it) the values live in files there and a scrape
sums all workers. Figures that live in the store (outbox depth, score distribution, last job
runs) are read at scrape time by `StoreCollector`, so they are right whichever worker answers.
"""
from __future__ import annotations

import os
from typing import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

REQUESTS = Counter("likely_http_requests_total", "HTTP requests by route rule and status",
                   ["method", "endpoint", "status"])
REQUEST_SECONDS = Histogram("likely_http_request_duration_seconds", "HTTP request latency by route rule",
                            ["method", "endpoint"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEBHOOK_VERIFICATIONS_FAILED = Counter("likely_webhook_verifications_failed_total",
                                       "Webhook requests whose Standard Webhooks signature did not verify",
                                       ["endpoint"])
DELIVERIES = Counter("likely_deliveries_total", "Per-recipient delivery results by connector and outcome",
                     ["connector", "outcome"])
JOB_RUNS = Counter("likely_job_runs_total", "Scheduled job runs by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram("likely_job_run_duration_seconds", "Duration of job runs that ran, by kind", ["kind"],
                        buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200))


def record_delivery(connector: str, outcome: str, count: int = 1) -> None:
    """Count delivery results: `connector` is the registry name (e.g. "sendgrid"), `outcome`
    one of sent | failed | retried | dead | skipped. Called by the campaigns outbox."""
    if count:
        DELIVERIES.labels(connector, outcome).inc(count)


def record_webhook_verification_failed(endpoint: str) -> None:
    WEBHOOK_VERIFICATIONS_FAILED.labels(endpoint).inc()


def record_job_run(kind: str, outcome: str, seconds: float | None) -> None:
    JOB_RUNS.labels(kind, outcome).inc()
    if seconds is not None:
        JOB_SECONDS.labels(kind).observe(seconds)


class _Scrape:
    """What one scrape exposes: this process's (or all workers') metrics plus extra collectors."""

    def __init__(self, collectors: Iterable[Collector]):
        self._collectors = list(collectors)

    def collect(self):
        for collector in self._collectors:
            yield from collector.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(*extra: Collector) -> tuple[bytes, str]:
    """The Prometheus text format for a scrape, and its content type."""
    if multiprocess_dir():
        # A fresh registry per scrape, as prometheus_client's multiprocess guide prescribes.
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        base: Collector = workers
    else:
        base = REGISTRY
    return generate_latest(_Scrape([base, *extra])), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live gauges (counters are kept)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
