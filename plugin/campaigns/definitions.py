"""Campaign definitions: validated against the workspace's predictions and connectors, stored,
listed, changed and archived. Every query is scoped to the caller's workspace.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import Connection, Engine, Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

import connectors
from plugin.audiences.compiler import parse_definition
from plugin.audiences.targeting import check_targetable, ensure_targetable
from plugin.campaigns import bands, channels, templates
from plugin.campaigns import schedule as schedules
from plugin.errors import Conflict, NotFound, ValidationFailed
from plugin.store import transaction
from plugin.store.tables import campaigns, outbox, predictions
from plugin.store.types import utcnow


def load_prediction(conn: Connection, workspace_id: int, prediction_id: int) -> Row:
    """The prediction, if it is in the workspace and may be targeted (403 demo/preview, 409 archived)."""
    row = conn.execute(select(predictions).where(predictions.c.id == prediction_id,
                                                 predictions.c.workspace_id == workspace_id)).first()
    if row is None:
        raise ValidationFailed(f"prediction {prediction_id} does not exist in this workspace",
                               code="unknown_prediction",
                               details={"prediction_id": ["Not a prediction of this workspace."]})
    ensure_targetable(row)  # 403 demo/preview, 409 archived: the audiences' rule and codes
    return row


def _check_audience(conn: Connection, workspace_id: int, tree: Any) -> dict | None:
    if tree is None:
        return None
    node = parse_definition(tree)
    check_targetable(conn, workspace_id, node)
    return tree


def _check_connectors(tiers: list[dict], enabled: Mapping[str, Any]) -> list[str]:
    problems, warnings = {}, []
    for i, tier in enumerate(tiers):
        for j, action in enumerate(tier["channels"]):
            cls = connectors.CONNECTORS.get(action["connector"])
            channel = action["channel"]
            expected = {"ads": ("ads", "host")}.get(channel, (channel,))
            if cls is None or cls.channel not in expected:
                names = sorted(n for n, c in connectors.CONNECTORS.items() if c.channel in expected)
                problems.setdefault(str(i), {}).setdefault("channels", {})[str(j)] = {
                    "connector": [f"Not a {channel} connector; use one of: {', '.join(names)}."]}
            elif not (enabled.get(action["connector"]) or {}).get("enabled"):
                warnings.append(f"connector {action['connector']!r} (tier {tier['name']!r}) is not "
                                "enabled in this workspace's settings: its messages will be held")
    if problems:
        raise ValidationFailed("a tier names a connector that cannot deliver its channel",
                               code="invalid_connector", details={"tiers": problems})
    return warnings


def _check_templates(tiers: list[dict], prediction_name: str, campaign_name: str) -> None:
    for i, tier in enumerate(tiers):
        for j, action in enumerate(tier["channels"]):
            source = {k: v for k, v in (action.get("template") or {}).items() if v}
            if not source:
                continue
            context = templates.sample_context(tier["offer"], tier["name"], prediction_name, campaign_name)
            try:
                templates.render(source, context)
            except templates.TemplateProblem as problem:
                if problem.kind == "data":
                    continue  # the sample user lacks a custom attribute real users may have
                raise ValidationFailed(
                    f"the {problem.field} template of tier {tier['name']!r} ({action['channel']}) "
                    f"is not valid: {problem.describe()}", code=problem.code,
                    details={"tiers": {str(i): {"channels": {str(j): {"template": {
                        problem.field: [problem.describe()]}}}}}, "line": problem.line}) from None


def validate(conn: Connection, workspace_id: int, data: dict) -> tuple[dict, list[str]]:
    """Check a loaded definition against the store; return the stored form and warnings."""
    prediction = load_prediction(conn, workspace_id, data["prediction_id"])
    names = [t["name"] for t in data["tiers"]]
    if len(set(names)) != len(names):
        raise ValidationFailed("tier names must be distinct", details={"tiers": ["Tier names repeat."]})
    bands.check_bands(data["tiers"], prediction.categories)
    warnings = _check_connectors(data["tiers"], channels.connector_settings(conn, workspace_id))
    warnings += bands.offer_warnings(data["tiers"], prediction.categories)
    _check_templates(data["tiers"], prediction.name, data["name"])
    audience = _check_audience(conn, workspace_id, data.get("audience"))
    return {**data, "audience": audience, "schedule": schedules.stored(data["schedule"])}, warnings


def create(engine: Engine, workspace_id: int, data: dict) -> tuple[dict, list[str]]:
    now = utcnow()
    with transaction(engine) as conn:
        definition, warnings = validate(conn, workspace_id, data)
        next_run = schedules.first_run_at(definition["schedule"], int(now.timestamp()))
        try:
            campaign_id = conn.execute(insert(campaigns).values(
                workspace_id=workspace_id, name=definition["name"], prediction_id=definition["prediction_id"],
                audience=definition["audience"], tiers=definition["tiers"], schedule=definition["schedule"],
                remessage_after_days=definition["remessage_after_days"], preset=definition.get("preset"),
                status=definition["status"], next_run_at=next_run, created_at=now, updated_at=now)
            ).inserted_primary_key[0]
        except IntegrityError:
            raise Conflict(f"a campaign named {definition['name']!r} already exists",
                           code="campaign_exists") from None
        return as_dict(get_row(conn, workspace_id, campaign_id)), warnings


def get_row(conn: Connection, workspace_id: int, campaign_id: int) -> Row:
    """The campaign if it belongs to the workspace; 404 otherwise (others' ids are not revealed)."""
    row = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id,
                                               campaigns.c.workspace_id == workspace_id)).first()
    if row is None:
        raise NotFound(f"campaign {campaign_id} does not exist", code="campaign_not_found")
    return row


def list_rows(conn: Connection, workspace_id: int, include_archived: bool = False) -> list[Row]:
    query = select(campaigns).where(campaigns.c.workspace_id == workspace_id).order_by(campaigns.c.id)
    if not include_archived:
        query = query.where(campaigns.c.status != "archived")
    return list(conn.execute(query))


def update_campaign(engine: Engine, workspace_id: int, campaign_id: int, patch: dict) -> tuple[dict, list[str]]:
    with transaction(engine) as conn:
        row = get_row(conn, workspace_id, campaign_id)
        if row.status == "archived":
            raise Conflict("an archived campaign cannot change", code="campaign_archived")
        merged = {"name": row.name, "prediction_id": row.prediction_id, "audience": row.audience,
                  "tiers": row.tiers, "schedule": row.schedule, "status": row.status,
                  "remessage_after_days": row.remessage_after_days, "preset": row.preset, **patch}
        definition, warnings = validate(conn, workspace_id, merged)
        values = {k: definition[k] for k in patch}
        if "schedule" in patch and row.status != "completed":
            values["next_run_at"] = schedules.first_run_at(definition["schedule"], int(time.time()))
        try:
            conn.execute(update(campaigns).where(campaigns.c.id == row.id)
                         .values(**values, updated_at=utcnow()))
        except IntegrityError:
            raise Conflict(f"a campaign named {patch.get('name')!r} already exists",
                           code="campaign_exists") from None
        return as_dict(get_row(conn, workspace_id, campaign_id)), warnings


def archive(engine: Engine, workspace_id: int, campaign_id: int) -> dict:
    """Archive: no more runs, and messages not yet sent are cancelled (kept, with the reason)."""
    with transaction(engine) as conn:
        row = get_row(conn, workspace_id, campaign_id)
        conn.execute(update(campaigns).where(campaigns.c.id == row.id)
                     .values(status="archived", next_run_at=None, updated_at=utcnow()))
        # Rows a worker is sending right now are left to it: their outcome is known in a moment.
        in_flight = and_(outbox.c.claimed_by.is_not(None), outbox.c.claim_expires > int(time.time()))
        cancelled = conn.execute(update(outbox).where(
            outbox.c.campaign_id == row.id, outbox.c.status.in_(("pending", "failed", "held")), ~in_flight)
            .values(status="skipped", reason="campaign_archived", claimed_by=None, claim_expires=None)).rowcount
        return {**as_dict(get_row(conn, workspace_id, campaign_id)), "cancelled_messages": cancelled}


def set_status(engine: Engine, workspace_id: int, campaign_id: int, status: str) -> tuple[dict, list[str]]:
    """Activate or pause: the explicit step before a campaign sends anything (revalidated first)."""
    return update_campaign(engine, workspace_id, campaign_id, {"status": status})


def unarchive(engine: Engine, workspace_id: int, campaign_id: int) -> dict:
    """Restore an archived campaign as paused (idempotent); its cancelled messages stay cancelled."""
    with transaction(engine) as conn:
        row = get_row(conn, workspace_id, campaign_id)
        if row.status == "archived":
            conn.execute(update(campaigns).where(campaigns.c.id == row.id).values(
                status="paused", updated_at=utcnow(),
                next_run_at=schedules.first_run_at(row.schedule, int(time.time()))))
        return as_dict(get_row(conn, workspace_id, campaign_id))


def _iso(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts is not None else None


def as_dict(row: Row) -> dict:
    return {"id": row.id, "name": row.name, "prediction_id": row.prediction_id, "status": row.status,
            "audience": row.audience, "tiers": row.tiers, "schedule": row.schedule,
            "remessage_after_days": row.remessage_after_days, "preset": row.preset,
            "next_run_at": _iso(row.next_run_at), "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}
