"""Reading the job run log: newest first, keyset-paged by run id."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from plugin.store.tables import job_runs, workspaces

ALL = object()  # every workspace and the system jobs (the operator's view)


@dataclass(frozen=True)
class Page:
    runs: list[dict[str, Any]]
    next_before: int | None  # pass as `before` for the next (older) page


def list_runs(conn: Connection, workspace_id: Any = ALL, *, limit: int = 50, before: int | None = None,
              kind: str | None = None, outcome: str | None = None, job_id: str | None = None) -> Page:
    """`workspace_id=None` means the system jobs; `ALL` means everything."""
    query = (select(job_runs, workspaces.c.slug.label("workspace"))
             .outerjoin(workspaces, workspaces.c.id == job_runs.c.workspace_id)
             .order_by(job_runs.c.id.desc()).limit(limit + 1))
    if workspace_id is not ALL:
        query = query.where(job_runs.c.workspace_id.is_(None) if workspace_id is None
                            else job_runs.c.workspace_id == workspace_id)
    if before is not None:
        query = query.where(job_runs.c.id < before)
    for column, value in (("kind", kind), ("outcome", outcome), ("job_id", job_id)):
        if value is not None:
            query = query.where(job_runs.c[column] == value)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1]["id"] if more else None)


def duration_seconds(run: dict[str, Any]) -> float | None:
    if run.get("finished_at") and run.get("started_at"):
        return round((run["finished_at"] - run["started_at"]).total_seconds(), 3)
    return None
