"""Prediction definitions in the store: create, read, change, archive — always within one workspace.

Status: `active` predictions are rescored and usable for targeting (at most
`max_active_predictions` per workspace); `demo` (bundled data) and `preview` (one run on real
data) show analytics only and can never be targeted; `archived` ones are read-only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from plugin.errors import Conflict, NotFound
from plugin.predictions import categories, scoring, trainings
from plugin.store.tables import predictions, workspaces
from plugin.store.types import utcnow

STATUSES = ("demo", "preview", "active", "archived")
SCHEDULES = ("daily", "weekly", "monthly")
DEFAULT_RETRAIN_DAYS = 15
IMMUTABLE = ("goal_event", "goal_kind", "goal_condition", "window_days")
GOAL_KINDS = ("event", "churn")  # churn: the risk that an active user does NOT perform the event


@dataclass(frozen=True)
class Prediction:
    id: int
    workspace_id: int
    name: str
    goal_event: str
    goal_condition: dict | None
    window_days: int
    audience: dict | None
    categories: dict
    schedule: str
    retrain_days: int
    status: str
    current_model_id: int | None
    created_at: datetime
    updated_at: datetime
    last_trained_at: datetime | None
    last_scored_at: datetime | None
    last_backtested_at: datetime | None
    goal_kind: str = "event"  # or "churn": the risk of NOT performing goal_event

    @property
    def is_churn(self) -> bool:
        return self.goal_kind == "churn"

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("workspace_id")
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


def _from_row(row) -> Prediction:
    return Prediction(**{name: getattr(row, name) for name in Prediction.__dataclass_fields__})


def create(conn: Connection, workspace_id: int, data: dict, max_active: int) -> Prediction:
    """Insert a validated definition (see schemas.PredictionSchema)."""
    status = data.get("status", "active")
    if status == "active":
        _check_active_limit(conn, workspace_id, max_active)
    now = utcnow()
    values = {"workspace_id": workspace_id, "name": data["name"], "goal_event": data["goal_event"],
              "goal_kind": data.get("goal_kind", "event"),
              "goal_condition": data.get("goal_condition"), "window_days": data["window_days"],
              "audience": data.get("audience"), "categories": data.get("categories") or categories.DEFAULT_SCHEME,
              "schedule": data.get("schedule", "daily"),
              "retrain_days": data.get("retrain_days", DEFAULT_RETRAIN_DAYS), "status": status,
              "created_at": now, "updated_at": now}
    try:
        with conn.begin_nested():
            new_id = conn.execute(insert(predictions).values(values).returning(predictions.c.id)).scalar_one()
    except IntegrityError:
        raise _name_taken(data["name"]) from None
    created = get(conn, workspace_id, new_id)
    trainings.queue_first(conn, created)
    return created


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a prediction named {name!r} already exists", code="name_taken", details={"name": name})


def _check_active_limit(conn: Connection, workspace_id: int, max_active: int, excluding: int | None = None) -> None:
    # Lock the workspace row so two concurrent activations cannot both pass the count
    # (SQLite's BEGIN IMMEDIATE already serialises writers; FOR UPDATE is dropped there).
    conn.execute(select(workspaces.c.id).where(workspaces.c.id == workspace_id).with_for_update())
    query = select(func.count()).where(predictions.c.workspace_id == workspace_id, predictions.c.status == "active")
    if excluding is not None:
        query = query.where(predictions.c.id != excluding)
    active = conn.execute(query).scalar_one()
    if active >= max_active:
        raise Conflict(f"this workspace already has {active} active predictions, the most allowed; archive one "
                       "first", code="too_many_active_predictions",
                       details={"active": active, "limit": max_active})


def get(conn: Connection, workspace_id: int, prediction_id: int) -> Prediction:
    row = conn.execute(select(predictions).where(predictions.c.workspace_id == workspace_id,
                                                 predictions.c.id == prediction_id)).first()
    if row is None:
        raise NotFound(f"prediction {prediction_id} does not exist", code="prediction_not_found")
    return _from_row(row)


def find(conn: Connection, workspace_id: int, reference: str | int) -> Prediction:
    """By id or by name (the CLI accepts either); a name made of digits still works."""
    text = str(reference).strip()
    row = conn.execute(select(predictions).where(predictions.c.workspace_id == workspace_id,
                                                 predictions.c.name == text)).first()
    if row is None and text.isdigit():
        row = conn.execute(select(predictions).where(predictions.c.workspace_id == workspace_id,
                                                     predictions.c.id == int(text))).first()
    if row is None:
        raise NotFound(f"no prediction named or numbered {text!r}", code="prediction_not_found")
    return _from_row(row)


def list_all(conn: Connection, workspace_id: int, status: str | None = None) -> list[Prediction]:
    query = select(predictions).where(predictions.c.workspace_id == workspace_id).order_by(predictions.c.id)
    if status:
        query = query.where(predictions.c.status == status)
    return [_from_row(r) for r in conn.execute(query)]


def change(conn: Connection, workspace_id: int, prediction_id: int, changes: dict, max_active: int) -> Prediction:
    """Apply a validated PATCH; a changed category scheme recategorises the stored scores at once."""
    current = get(conn, workspace_id, prediction_id)
    if current.status == "archived":
        raise Conflict("an archived prediction cannot be changed", code="prediction_archived")
    if changes.get("status") == "active" and current.status != "active":
        _check_active_limit(conn, workspace_id, max_active, excluding=prediction_id)
    if not changes:
        return current
    try:
        with conn.begin_nested():
            conn.execute(update(predictions).where(predictions.c.id == prediction_id)
                         .values(**changes, updated_at=utcnow()))
    except IntegrityError:
        raise _name_taken(changes.get("name", "")) from None
    updated = get(conn, workspace_id, prediction_id)
    if "categories" in changes and changes["categories"] != current.categories:
        scoring.recategorize(conn, updated)
    return updated


def archive(conn: Connection, workspace_id: int, prediction_id: int) -> Prediction:
    """Archive (idempotent): no more training or scoring, and no targeting."""
    current = get(conn, workspace_id, prediction_id)
    if current.status != "archived":
        conn.execute(update(predictions).where(predictions.c.id == prediction_id)
                     .values(status="archived", archived_from=current.status, updated_at=utcnow()))
    return get(conn, workspace_id, prediction_id)


def unarchive(conn: Connection, workspace_id: int, prediction_id: int, max_active: int) -> Prediction:
    """Restore an archived prediction to the status it had (idempotent); an active one takes a slot again."""
    current = get(conn, workspace_id, prediction_id)
    if current.status != "archived":
        return current
    before = conn.execute(select(predictions.c.archived_from).where(predictions.c.id == prediction_id)).scalar()
    status = before if before in ("demo", "preview", "active") else "active"
    if status == "active":
        _check_active_limit(conn, workspace_id, max_active, excluding=prediction_id)
    conn.execute(update(predictions).where(predictions.c.id == prediction_id)
                 .values(status=status, archived_from=None, updated_at=utcnow()))
    return get(conn, workspace_id, prediction_id)

