"""Job bodies for the scheduler's registry: plain functions `fn(engine, **params) -> counts`.

- `run_campaigns`: plan the run of every active campaign that is due (one run per slot);
- `deliver_outbox`: one delivery pass (the worker loop calls it repeatedly);
- `sync_segments`: push segment differences to every destination;
- `write_back_scores`: write changed scores and categories to the host.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, update

from plugin.campaigns import runs, syncs, writeback
from plugin.campaigns.delivery import deliver_outbox as _deliver
from plugin.errors import LikelyError
from plugin.store import transaction
from plugin.store.tables import campaigns

log = logging.getLogger(__name__)


def run_campaigns(engine: Engine, now_ts: int | None = None, workspace_id: int | None = None,
                  **_: object) -> dict[str, int]:
    """Plan every due run (of one workspace, when the scheduler names it). A campaign that
    cannot run (its prediction archived…) is paused, logged."""
    now_ts = int(time.time()) if now_ts is None else now_ts
    counts = {"due": 0, "planned": 0, "existing": 0, "paused": 0}
    with engine.connect() as conn:
        due = [(ws, cid) for ws, cid in runs.due_campaigns(conn, now_ts)
               if workspace_id is None or ws == workspace_id]
    for workspace_id, campaign_id in due:
        counts["due"] += 1
        try:
            _, created = runs.start_run(engine, workspace_id, campaign_id, trigger="schedule", now_ts=now_ts)
        except LikelyError as error:
            log.warning("campaign %s paused: %s: %s", campaign_id, error.code, error.message)
            with transaction(engine) as conn:
                conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(status="paused"))
            counts["paused"] += 1
            continue
        counts["planned" if created else "existing"] += 1
    return counts


def deliver_outbox(engine: Engine, worker_id: str = "worker", limit: int = 1000, **params) -> dict[str, int]:
    return _deliver(engine, worker_id, limit, **params)


def sync_segments(engine: Engine, **params) -> dict[str, int]:
    return syncs.sync_all(engine, **params)


def write_back_scores(engine: Engine, **params) -> dict[str, int]:
    """Changed scores, then opt-outs not yet written to the host."""
    counts = writeback.write_back_scores(engine, **params)
    from plugin.engagement import unsubscribes
    options = {k: v for k, v in params.items() if k in ("workspace_id", "connector_options")}
    counts.update({f"unsubscribes_{k}": v for k, v in unsubscribes.write_back(engine, **options).items()})
    return counts


def refresh_segments(engine: Engine, *, workspace_id: int, **_: object) -> dict[str, int]:
    """Refresh every segment of the workspace, then push the differences to its destinations."""
    from plugin.audiences import segments as audience_segments
    now_ts = int(time.time())
    with engine.connect() as conn:
        ids = [row.id for row in audience_segments.list_segments(conn, workspace_id)]
    counts = {"segments": 0, "added": 0, "removed": 0}
    for segment_id in ids:
        try:
            with transaction(engine) as conn:
                _, diff = audience_segments.refresh_segment(conn, workspace_id, segment_id, now_ts)
        except LikelyError as error:  # e.g. its prediction was archived since: keep the others going
            log.warning("segment %s not refreshed: %s", segment_id, error.code)
            continue
        counts["segments"] += 1
        counts["added"] += int(diff.get("added", 0))
        counts["removed"] += int(diff.get("removed", 0))
    synced = sync_segments(engine, workspace_id=workspace_id)
    counts.update({f"sync_{k}": v for k, v in synced.items()})
    return counts


# The scheduler's job kinds (plugin.jobs.registry imports this module).
from plugin.jobs import register  # noqa: E402

register("run_campaigns", run_campaigns)
register("deliver_outbox", deliver_outbox)
register("writeback_scores", write_back_scores)
register("refresh_segments", refresh_segments)
