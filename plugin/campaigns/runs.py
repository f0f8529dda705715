"""Runs: a run row and its outbox rows are written in one transaction, exactly once per key.

`start_run` is what the API, the CLI and the scheduler call. A run that exists for the key is
returned as it is (created = False): no second run, no second outbox row.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from plugin.campaigns import definitions, planner
from plugin.campaigns import schedule as schedules
from plugin.errors import Conflict
from plugin.store import is_postgres, transaction
from plugin.store.tables import campaign_runs, campaigns
from plugin.store.types import utcnow

BIG_RUN = 10_000  # outbox rows; smaller runs leave statistics to autovacuum


def start_run(engine: Engine, workspace_id: int, campaign_id: int, *, trigger: str = "manual",
              idempotency_key: str | None = None, now_ts: int | None = None) -> tuple[dict, bool]:
    """Plan a run of the campaign now; return (run, created)."""
    now_ts = int(time.time()) if now_ts is None else now_ts
    try:
        with transaction(engine) as conn:
            campaign = definitions.get_row(conn, workspace_id, campaign_id)
            key = schedules.run_key(campaign.schedule, now_ts, int(campaign.created_at.timestamp()),
                                    idempotency_key)
            existing = _find(conn, campaign.id, key)
            if existing is not None:
                if trigger == "schedule":  # this slot was run by hand: the schedule moves on
                    _advance(conn, campaign, now_ts)
                return existing, False
            if campaign.status == "archived":
                raise Conflict("an archived campaign does not run", code="campaign_archived")
            prediction = definitions.load_prediction(conn, workspace_id, campaign.prediction_id)
            run_id = conn.execute(insert(campaign_runs).values(
                workspace_id=workspace_id, campaign_id=campaign.id, run_key=key, trigger=trigger,
                status="planned", run_ts=now_ts, model_id=prediction.current_model_id,
                window_days=prediction.window_days, goal_event=prediction.goal_event, counts={},
                created_at=utcnow())).inserted_primary_key[0]
            counts = {"tiers": planner.plan(conn, campaign, run_id, now_ts)}
            conn.execute(update(campaign_runs).where(campaign_runs.c.id == run_id).values(counts=counts))
            _advance(conn, campaign, now_ts)
            made = _find(conn, campaign.id, key)
        _refresh_statistics(engine, sum(t["targeted"] for t in counts["tiers"]))
        return made, True
    except IntegrityError:
        # Another request planned the same key at the same moment and committed first.
        with engine.connect() as conn:
            campaign = definitions.get_row(conn, workspace_id, campaign_id)
            key = schedules.run_key(campaign.schedule, now_ts, int(campaign.created_at.timestamp()),
                                    idempotency_key)
            existing = _find(conn, campaign.id, key)
        if existing is None:
            raise
        return existing, False


def _refresh_statistics(engine: Engine, written: int) -> None:
    """After a large run, refresh PostgreSQL's statistics of the outbox: planned from stale ones,
    a claim sorts every due row instead of reading the first `limit` of the due index."""
    if written >= BIG_RUN and is_postgres(engine):
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE outbox")


def _advance(conn: Connection, campaign: Any, now_ts: int) -> None:
    """After a run: a one-off campaign is completed, a recurring one is due next period."""
    following = schedules.next_run_after(campaign.schedule, now_ts, int(campaign.created_at.timestamp()))
    values: dict[str, Any] = {"next_run_at": following, "updated_at": utcnow()}
    if following is None and campaign.status == "active":
        values["status"] = "completed"
    conn.execute(update(campaigns).where(campaigns.c.id == campaign.id).values(**values))


def _find(conn: Connection, campaign_id: int, key: str) -> dict | None:
    row = conn.execute(select(campaign_runs).where(campaign_runs.c.campaign_id == campaign_id,
                                                   campaign_runs.c.run_key == key)).first()
    return as_dict(row) if row else None


def list_runs(conn: Connection, workspace_id: int, campaign_id: int) -> list[dict]:
    definitions.get_row(conn, workspace_id, campaign_id)
    return [as_dict(r) for r in conn.execute(select(campaign_runs).where(
        campaign_runs.c.campaign_id == campaign_id).order_by(campaign_runs.c.id))]


def as_dict(row: Any) -> dict:
    return {"id": row.id, "campaign_id": row.campaign_id, "run_key": row.run_key, "trigger": row.trigger,
            "status": row.status, "run_at": datetime.fromtimestamp(row.run_ts, timezone.utc).isoformat(),
            "model_id": row.model_id, "window_days": row.window_days, "goal_event": row.goal_event,
            "counts": row.counts}


def due_campaigns(conn: Connection, now_ts: int) -> list[tuple[int, int]]:
    """(workspace, campaign) of every active campaign whose next run is due."""
    return [(r.workspace_id, r.id) for r in conn.execute(
        select(campaigns.c.workspace_id, campaigns.c.id)
        .where(campaigns.c.status == "active", campaigns.c.next_run_at <= now_ts)
        .order_by(campaigns.c.next_run_at))]
