"""Running one job: claim it, call its kind, record the outcome. Every path goes through here:
the scheduler's executor, `likely jobs run`, and tests."""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import Engine

from plugin.jobs import leases, registry
from plugin.jobs.leases import Claim
from plugin.observability import logs, metrics
from plugin.observability.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 300
MAX_ERROR_CHARS = 2000


def holder_name() -> str:
    """Who holds a lease: host, pid and an instance tag (two schedulers in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_key_for(scheduled_at: datetime) -> str:
    """The same scheduled time gives the same key in every scheduler process."""
    return scheduled_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def manual_run_key() -> str:
    return f"manual:{uuid.uuid4().hex}"


@dataclass(frozen=True)
class RunResult:
    outcome: str                      # ok | failed | skipped | duplicate | unregistered
    run_id: int | None = None
    counts: Mapping[str, Any] | None = None
    error: str | None = None


def execute(engine: Engine, job_id: str, scheduled_at: datetime | None, *, kind: str,
            workspace_id: int | None = None, params: Mapping[str, Any] | None = None,
            holder: str | None = None, lease_seconds: int = DEFAULT_LEASE_SECONDS,
            run_key: str | None = None) -> RunResult:
    """Run job `job_id` for its `scheduled_at` time (or a manual run when None), exactly once.

    Never raises for a failing job: the failure is the run's outcome. Store errors while
    claiming or recording do raise — the executor logs them and the next fire retries.
    """
    holder = holder or holder_name()
    run_key = run_key or (run_key_for(scheduled_at) if scheduled_at else manual_run_key())
    with logs.log_context(job_id=job_id, job_kind=kind, run_key=run_key):
        if not registry.is_registered(kind):
            # Another process may implement it; claiming here would stop that one from running it.
            log.warning("job %s not run: kind %r is not registered in this process", job_id, kind)
            metrics.record_job_run(kind, "unregistered", None)
            return RunResult("unregistered")
        claimed = leases.claim(engine, job_id=job_id, run_key=run_key, kind=kind, workspace_id=workspace_id,
                               holder=holder, lease_seconds=lease_seconds, scheduled_at=scheduled_at)
        if claimed.claim is Claim.DUPLICATE:
            log.info("job %s run %s already claimed by another scheduler", job_id, run_key)
            metrics.record_job_run(kind, "duplicate", None)
            return RunResult("duplicate")
        if claimed.claim is Claim.BUSY:
            log.warning("job %s run %s skipped: run %s is still in progress", job_id, run_key, claimed.busy_with)
            metrics.record_job_run(kind, "skipped", None)
            return RunResult("skipped", claimed.run_id)
        return _run(engine, job_id, kind, workspace_id, params or {}, holder, lease_seconds, claimed.run_id)


def scheduled(*context: Any, kind: str, workspace_id: int | None = None, params: Mapping[str, Any] | None = None,
              **options: Any) -> RunResult:
    """The callable stored with each APScheduler job. The job keeps only its kind and params;
    the executor adds this process's context, `(engine, job_id, scheduled_at)`, when it fires."""
    engine, job_id, scheduled_at = context
    return execute(engine, job_id, scheduled_at, kind=kind, workspace_id=workspace_id, params=params, **options)


def _run(engine: Engine, job_id: str, kind: str, workspace_id: int | None, params: Mapping[str, Any],
         holder: str, lease_seconds: int, run_id: int) -> RunResult:
    log.info("job %s started", job_id)
    started = time.perf_counter()
    counts: dict[str, Any] = {}
    error = None
    try:
        with leases.kept_alive(engine, job_id=job_id, holder=holder, lease_seconds=lease_seconds):
            counts = _json_safe(registry.run_kind(kind, engine, workspace_id, params))
    except Exception as failure:
        # The run log keeps the reason; the traceback goes to the (redacted) process log.
        error = redact(f"{type(failure).__name__}: {failure}")[:MAX_ERROR_CHARS]
        log.exception("job %s failed", job_id)
    outcome = "failed" if error else "ok"
    seconds = time.perf_counter() - started
    leases.finish(engine, job_id=job_id, run_id=run_id, holder=holder, outcome=outcome, counts=counts, error=error)
    metrics.record_job_run(kind, outcome, seconds)
    log.info("job %s finished: %s", job_id, outcome, extra={"counts": counts, "duration_ms": round(seconds * 1000)})
    return RunResult(outcome, run_id, counts, error)


def _json_safe(counts: Mapping[str, Any]) -> dict[str, Any]:
    # Counts are numbers by contract; anything else is kept as text rather than failing the run.
    return {str(k): v if isinstance(v, (int, float, bool)) or v is None else str(v) for k, v in counts.items()}
