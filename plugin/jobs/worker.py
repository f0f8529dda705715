"""`likely worker`: the delivery loop. It calls the `deliver_outbox` job kind (registered by
plugin/campaigns) again and again; outbox rows are claimed in the database, so any number of
workers on any number of machines share the work without sending a message twice."""
from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any, Callable, Mapping

from sqlalchemy import Engine

from plugin.jobs import registry
from plugin.observability import logs, metrics
from plugin.observability.redaction import redact

log = logging.getLogger(__name__)

KIND = "deliver_outbox"
# After an error (store unreachable, a bug) wait longer than the poll, up to this, so a broken
# dependency is not hammered; the first success resets it.
MAX_BACKOFF_SECONDS = 60.0


def run(engine: Engine, *, poll_seconds: float, stop: threading.Event,
        max_iterations: int | None = None, sleep: Callable[[float], bool] | None = None,
        params: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Deliver until `stop` is set; the batch in hand is always finished first.

    `deliver_outbox(engine, **params) -> {"claimed": n, ...}`: an empty claim means the outbox had nothing
    due, so the loop waits `poll_seconds`; otherwise it goes straight on to the next batch.
    """
    deliver = registry.get(KIND)
    wait = sleep or stop.wait
    totals = {"iterations": 0, "claimed": 0, "errors": 0}
    backoff = poll_seconds
    while not stop.is_set() and (max_iterations is None or totals["iterations"] < max_iterations):
        totals["iterations"] += 1
        started = time.perf_counter()
        try:
            with logs.log_context(job_kind=KIND, worker_iteration=totals["iterations"]):
                counts = dict(deliver(engine, **(params or {})) or {})
        except Exception as error:
            totals["errors"] += 1
            metrics.record_job_run(KIND, "failed", time.perf_counter() - started)
            log.error("delivery batch failed: %s", redact(f"{type(error).__name__}: {error}"), exc_info=True)
            wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = poll_seconds
        claimed = int(counts.get("claimed", 0) or 0)
        totals["claimed"] += claimed
        if claimed:
            metrics.record_job_run(KIND, "ok", time.perf_counter() - started)
            log.info("delivered a batch", extra={"counts": counts})
        else:
            wait(poll_seconds)
    return totals


def run_until_signalled(engine: Engine, settings: Mapping[str, Any], poll_seconds: float | None = None) -> dict:
    """The process entry point: SIGTERM or SIGINT stops the loop after the current batch."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker stopping on %s after the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    poll = poll_seconds if poll_seconds is not None else settings["worker_poll_seconds"]
    log.info("worker started (poll every %ss)", poll)
    totals = run(engine, poll_seconds=poll, stop=stop,
                 params={"lease_seconds": settings["outbox_lease_seconds"]})
    log.info("worker stopped", extra={"totals": totals})
    return totals
