"""Builders for campaign tests: a workspace's predictions, users, scores and settings."""
from __future__ import annotations

from typing import Any, Iterable

import pytest
from sqlalchemy import insert, select, update

from plugin import workspaces
from plugin.store import transaction
from plugin.store.tables import predictions, scores, users
from plugin.store.tables import workspaces as workspaces_table
from plugin.store.types import utcnow

DEFAULT_SCHEME = {"type": "fixed", "bins": [{"name": "Low", "min": 0}, {"name": "Medium", "min": 50},
                                            {"name": "High", "min": 75}]}


def workspace_id(engine, slug: str = "default") -> int:
    return workspaces.ensure(engine, slug).id


def add_prediction(engine, ws: int, name: str = "purchase", status: str = "active",
                   window_days: int = 7, goal_event: str = "purchase", scheme: dict | None = None) -> int:
    now = utcnow()
    with transaction(engine) as conn:
        return conn.execute(insert(predictions).values(
            workspace_id=ws, name=name, goal_event=goal_event, window_days=window_days,
            categories=scheme or DEFAULT_SCHEME, schedule="daily", retrain_days=15, status=status,
            current_model_id=None, created_at=now, updated_at=now)).inserted_primary_key[0]


def category_of(score: float) -> str:
    return "High" if score >= 75 else "Medium" if score >= 50 else "Low"


def add_users(engine, ws: int, people: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Insert users (external id, attributes); return {external id: id}."""
    now = utcnow()
    with transaction(engine) as conn:
        conn.execute(insert(users), [{"workspace_id": ws, "external_id": ext, "attributes": attrs,
                                      "created_at": now, "updated_at": now} for ext, attrs in people])
        return dict(conn.execute(select(users.c.external_id, users.c.id).where(users.c.workspace_id == ws)).all())


def add_scores(engine, ws: int, prediction_id: int, by_user: dict[int, float], scored_at: int = 1_700_000_000) -> None:
    with transaction(engine) as conn:
        conn.execute(insert(scores), [{"workspace_id": ws, "prediction_id": prediction_id, "user_id": uid,
                                       "score": s, "category": category_of(s), "model_id": 1,
                                       "scored_at": scored_at} for uid, s in by_user.items()])


def set_settings(engine, ws: int, **settings: Any) -> None:
    with transaction(engine) as conn:
        current = conn.execute(select(workspaces_table.c.settings).where(workspaces_table.c.id == ws)).scalar()
        conn.execute(update(workspaces_table).where(workspaces_table.c.id == ws)
                     .values(settings={**(current or {}), **settings}))


SENDGRID = {"enabled": True, "api_key": "SG.test-key-abcdef", "from_email": "news@shop.example",
            "max_attempts": 1}


def email_tier(name: str, categories: list[str], discount: float = 0, control_share: float = 0,
               connector: str = "sendgrid") -> dict:
    return {"name": name, "band": {"categories": categories}, "offer": {"discount_percent": discount},
            "control_share": control_share,
            "channels": [{"channel": "email", "connector": connector, "template": {
                "subject": "Hi {{ user.first_name | default('there') }}",
                "text": "{{ offer.discount_percent | int }}% off for {{ category }} ({{ score }})",
                "html": "<p>{{ user.first_name }}: {{ offer.discount_percent | int }}% off</p>"}}]}


def campaign_body(prediction_id: int, tiers: list[dict] | None = None, **extra: Any) -> dict:
    return {"name": extra.pop("name", "Spring"), "prediction_id": prediction_id,
            "tiers": tiers or [email_tier("High", ["High"]), email_tier("Medium", ["Medium"], 10),
                               email_tier("Low", ["Low"], 20)], **extra}


@pytest.fixture(autouse=True)
def fresh_connectors():
    """Delivery keeps connectors between passes; every test starts without any."""
    from plugin.campaigns import pool
    pool.clear()
    yield
    pool.clear()
