"""Exactly once: who runs a fired job, decided in the database.

Two rules, each enforced by a constraint rather than by timing:

* one run per scheduled time — `job_runs` has a unique (job_id, run_key); every scheduler that
  fires the same scheduled time inserts the same key, and all but the first fail;
* one run in progress per job — a `job_leases` row per job while it runs, renewed by its holder
  and taken over only once expired (a crashed holder), so an overrunning job is not doubled;
  the later run is recorded as skipped.
"""
from __future__ import annotations

import enum
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from plugin.store import is_postgres, transaction
from plugin.store.tables import job_leases, job_runs
from plugin.store.types import utcnow

log = logging.getLogger(__name__)

STALE_RUN_ERROR = "the scheduler running it stopped renewing its lease (crashed or stopped)"


class Claim(enum.Enum):
    ACQUIRED = "acquired"    # this caller runs it
    BUSY = "busy"            # a previous run of the job is still in progress: recorded as skipped
    DUPLICATE = "duplicate"  # another scheduler already claimed this very run: nothing recorded


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    run_id: int | None = None
    busy_with: str | None = None  # the run key holding the lease when BUSY


def claim(engine: Engine, *, job_id: str, run_key: str, kind: str, workspace_id: int | None,
          holder: str, lease_seconds: int, scheduled_at: datetime | None) -> ClaimResult:
    """Take the job's lease and record the run as running — or as skipped, or not at all."""
    try:
        with transaction(engine) as conn:
            now = utcnow()
            lease = conn.execute(select(job_leases).where(job_leases.c.job_id == job_id)
                                 .with_for_update()).first()
            acquired, busy_with = _take_lease(conn, lease, job_id, run_key, holder, now, lease_seconds)
            values = dict(job_id=job_id, run_key=run_key, kind=kind, workspace_id=workspace_id, holder=holder,
                          scheduled_at=scheduled_at, started_at=now)
            if acquired:
                values.update(outcome="running")
            else:
                values.update(outcome="skipped", finished_at=now, counts={},
                              error=f"the previous run ({busy_with}) is still in progress")
            # Fails on (job_id, run_key) when another scheduler already claimed this run; the
            # rollback then also undoes any lease taken above.
            run_id = conn.execute(insert(job_runs).values(**values).returning(job_runs.c.id)).scalar_one()
    except IntegrityError:
        return ClaimResult(Claim.DUPLICATE)
    return ClaimResult(Claim.ACQUIRED if acquired else Claim.BUSY, run_id, busy_with)


def _take_lease(conn: Connection, lease, job_id: str, run_key: str, holder: str, now: datetime,
                lease_seconds: int) -> tuple[bool, str | None]:
    expires = now + timedelta(seconds=lease_seconds)
    mine = dict(run_key=run_key, holder=holder, acquired_at=now, expires_at=expires)
    if lease is None:
        statement = (pg_insert if is_postgres(conn) else sqlite_insert)(job_leases).values(job_id=job_id, **mine)
        # A concurrent claimer may insert first: PostgreSQL waits for it, then does nothing.
        taken = conn.execute(statement.on_conflict_do_nothing(index_elements=["job_id"])
                             .returning(job_leases.c.job_id)).first()
        if taken is not None:
            return True, None
        lease = conn.execute(select(job_leases).where(job_leases.c.job_id == job_id)).first()
        return False, lease.run_key if lease else "unknown"
    if lease.expires_at > now:
        return False, lease.run_key
    # The holder crashed (it would have renewed): its run will never finish; say so.
    conn.execute(update(job_runs).where(job_runs.c.job_id == job_id, job_runs.c.run_key == lease.run_key,
                                        job_runs.c.outcome == "running")
                 .values(outcome="failed", finished_at=now, error=STALE_RUN_ERROR))
    log.warning("job %s: took over the expired lease of run %s held by %s", job_id, lease.run_key, lease.holder)
    conn.execute(update(job_leases).where(job_leases.c.job_id == job_id).values(**mine))
    return True, None


def finish(engine: Engine, *, job_id: str, run_id: int, holder: str, outcome: str,
           counts: Mapping[str, Any] | None, error: str | None) -> None:
    """Record the outcome and release the lease (only if still ours)."""
    with transaction(engine) as conn:
        conn.execute(update(job_runs).where(job_runs.c.id == run_id)
                     .values(outcome=outcome, finished_at=utcnow(), counts=dict(counts or {}), error=error))
        conn.execute(delete(job_leases).where(job_leases.c.job_id == job_id, job_leases.c.holder == holder))


def renew(engine: Engine, *, job_id: str, holder: str, lease_seconds: int) -> bool:
    """Push the lease's expiry forward; False if it is no longer ours."""
    with transaction(engine) as conn:
        result = conn.execute(update(job_leases)
                              .where(job_leases.c.job_id == job_id, job_leases.c.holder == holder)
                              .values(expires_at=utcnow() + timedelta(seconds=lease_seconds)))
        return result.rowcount == 1


@contextmanager
def kept_alive(engine: Engine, *, job_id: str, holder: str, lease_seconds: int) -> Iterator[None]:
    """Renew the lease every third of its length while the body runs."""
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(lease_seconds / 3):
            try:
                if not renew(engine, job_id=job_id, holder=holder, lease_seconds=lease_seconds):
                    log.error("job %s: lost its lease while running (stalled longer than %ss?)",
                              job_id, lease_seconds)
                    return
            except Exception:  # a blip must not kill the heartbeat; the next beat retries
                log.warning("job %s: could not renew its lease", job_id, exc_info=True)

    thread = threading.Thread(target=heartbeat, name=f"lease:{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
