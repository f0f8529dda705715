"""The demo: bundled synthetic data loaded through the ingest writer, and a demo prediction on it."""
from __future__ import annotations

import time
from typing import Callable

from sqlalchemy import Engine, func, select

from plugin.demo.generator import DAY, generate
from plugin.ingest import writer
from plugin.store import transaction
from plugin.store.tables import events

DEMO_PREDICTION = {"name": "purchase within 14 days", "goal_event": "purchase", "window_days": 14,
                   "status": "demo", "schedule": "daily"}
USER_BATCH = 5_000


def load(engine: Engine, workspace_id: int, users: int, seed: int = 7, end_ts: int | None = None,
         progress: Callable[[int], None] | None = None) -> dict:
    """Write the demo users and events (idempotent: ids are deterministic, the writer ignores repeats)."""
    end_ts = end_ts if end_ts is not None else int(time.time()) // DAY * DAY
    data = generate(users, end_ts, seed=seed)
    for start in range(0, len(data.users), USER_BATCH):
        with transaction(engine) as conn:
            writer.upsert_users(conn, workspace_id, data.users[start:start + USER_BATCH])
    written = 0
    for rows in data.event_rows():
        with transaction(engine) as conn:
            written += writer.write_events(conn, workspace_id, rows)
        if progress:
            progress(len(rows))
    return {"users": users, "events": int(len(data.ts)), "written": written}


def data_end(engine: Engine, workspace_id: int) -> int:
    """The end of the loaded data (next UTC midnight after the last event): the demo's "now"."""
    with engine.connect() as conn:
        last = conn.execute(select(func.max(events.c.ts)).where(events.c.workspace_id == workspace_id)).scalar()
    return (int(last) // DAY + 1) * DAY if last is not None else int(time.time())
