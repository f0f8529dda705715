"""The host installs, reconfigures and uninstalls likely: webhooks signed with a partner secret."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from plugin import crypto, installs, store, workspace_settings, workspaces
from plugin.api.docs import api_doc, json_schema
from plugin.api.requests import json_body, load
from plugin.api.security import verify_partner_webhook
from plugin.errors import ValidationFailed
from plugin.ingest.schemas import Text
from plugin.store.tables import webhook_receipts
from plugin.store.tables import workspaces as workspaces_table
from plugin.store.types import utcnow

bp = Blueprint("install", __name__, url_prefix="/webhooks")

SETTINGS_REF = json_schema("WorkspaceSettings", workspace_settings.schema)
SHOWN_SETTINGS_REF = json_schema("WorkspaceSettingsShown", workspace_settings.response_schema)


class InstallSchema(Schema):
    workspace = fields.String(required=True, validate=validate.Regexp(
        workspaces.SLUG, error="A workspace slug is 1-64 lowercase letters, digits, _ and -."),
        metadata={"description": "The host account's id, as likely names the workspace."})
    name = Text(load_default=None, metadata={"description": "Display name (default: the slug)."})
    settings = fields.Dict(load_default=dict, metadata={
        "description": "The integration form as saved in the host; replaces the stored settings. "
                       "A secret sent as \"********\" keeps its stored value.",
        "allOf": [SETTINGS_REF]})
    rotate_credentials = fields.Boolean(load_default=False, metadata={
        "description": "Issue a new API key and webhook secret, revoking the old ones."})


class UninstallSchema(Schema):
    workspace = fields.String(required=True, validate=validate.Regexp(workspaces.SLUG))


class WorkspaceSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": [workspaces.ACTIVE, workspaces.UNINSTALLED]})


class CredentialsSchema(Schema):
    api_key = fields.String(required=True, metadata={"description": "Bearer key for /v1 (stored hashed)."})
    webhook_secret = fields.String(required=True, metadata={
        "description": "whsec_ secret to sign this workspace's webhooks with (stored encrypted)."})


class InstallResultSchema(Schema):
    workspace = fields.Nested(WorkspaceSchema, required=True)
    created = fields.Boolean(required=True)
    credentials = fields.Nested(CredentialsSchema, allow_none=True, required=True, metadata={
        "description": "Issued on first install, reinstall or rotation, and shown only in that answer."})
    credentials_issued = fields.Boolean(required=True, metadata={
        "description": "True when this delivery issued credentials (also on a redelivery, which omits them)."})
    settings = fields.Dict(required=True, metadata={"allOf": [SHOWN_SETTINGS_REF]})
    duplicate = fields.Boolean(required=True)


class UninstallResultSchema(Schema):
    workspace = fields.Nested(WorkspaceSchema, required=True)
    purge_after = fields.DateTime(required=True, metadata={
        "description": "When the workspace's data is deleted unless it is installed again."})
    duplicate = fields.Boolean(required=True)


def _prior(conn: Connection, slug: str, endpoint: str, webhook_id: str) -> dict | None:
    return conn.execute(select(webhook_receipts.c.response)
                        .join(workspaces_table, workspaces_table.c.id == webhook_receipts.c.workspace_id)
                        .where(workspaces_table.c.slug == slug, webhook_receipts.c.endpoint == endpoint,
                               webhook_receipts.c.webhook_id == webhook_id)).scalar()


def _once(endpoint: str, slug: str, webhook_id: str, act) -> tuple[dict, bool]:
    """Run `act(conn) -> (workspace_id, answer, stored answer)` once per webhook-id.

    The receipt (the answer without credentials) is written in the same transaction, so a
    redelivery returns the first answer minus what is shown only once.
    """
    engine = store.engine()
    try:
        with store.transaction(engine) as conn:
            prior = _prior(conn, slug, endpoint, webhook_id)
            if prior is not None:
                return prior, True
            workspace_id, answer, stored = act(conn)
            conn.execute(insert(webhook_receipts).values(
                workspace_id=workspace_id, webhook_id=webhook_id, endpoint=endpoint,
                response=stored, received_at=utcnow()))
    except IntegrityError:
        with engine.connect() as conn:
            prior = _prior(conn, slug, endpoint, webhook_id)
        if prior is None:
            raise
        return prior, True
    return answer, False


def _verified_body(schema: Schema) -> tuple[str, dict]:
    webhook_id = verify_partner_webhook()
    if len(webhook_id) > 255:
        raise ValidationFailed("webhook-id is longer than 255 characters", code="invalid_webhook_id")
    return webhook_id, load(schema, json_body())


@bp.post("/install")
@api_doc(summary="Install likely in a host account, or save its settings", tags=["install"],
         security="partner", body=InstallSchema, responses={200: InstallResultSchema, 201: InstallResultSchema},
         description="Creates or updates the workspace. On first install (and on reinstall or "
                     "rotation) the answer carries a new API key and webhook secret, once. Settings "
                     "are validated against manifest.json's workspace_settings (400 names each bad field).")
def install():
    webhook_id, data = _verified_body(InstallSchema())
    slug = data["workspace"]
    installs.check_slug(slug)
    keyring = crypto.current()

    def act(conn):
        done = installs.install(conn, slug, data["name"] or slug, data["settings"], keyring,
                                data["rotate_credentials"])
        credentials = ({"api_key": done.api_key, "webhook_secret": done.webhook_secret}
                       if done.api_key else None)
        answer = {"workspace": {"slug": slug, "name": done.name, "status": done.workspace.status},
                  "created": done.created, "credentials": credentials,
                  "credentials_issued": credentials is not None,
                  "settings": workspace_settings.redact(workspace_settings.read(conn, done.workspace.id, keyring))}
        return done.workspace.id, answer, {**answer, "credentials": None}

    answer, duplicate = _once("install", slug, webhook_id, act)
    status = 201 if answer["created"] and not duplicate else 200
    return jsonify({**answer, "duplicate": duplicate}), status


@bp.post("/uninstall")
@api_doc(summary="Uninstall likely from a host account", tags=["install"], security="partner",
         body=UninstallSchema, responses={200: UninstallResultSchema},
         description="Stops the workspace at once (jobs, API keys and webhooks) and deletes its data "
                     "after LIKELY_UNINSTALL_GRACE_DAYS unless it is installed again.")
def uninstall():
    webhook_id, data = _verified_body(UninstallSchema())
    slug = data["workspace"]
    installs.check_slug(slug)
    grace = timedelta(days=current_app.config["LIKELY"]["uninstall_grace_days"])

    def act(conn):
        workspace = installs.uninstall(conn, slug)
        since = conn.execute(select(workspaces_table.c.uninstalled_at)
                             .where(workspaces_table.c.id == workspace.id)).scalar()
        answer = {"workspace": {"slug": slug, "name": _name(conn, workspace.id), "status": workspace.status},
                  "purge_after": (since + grace).isoformat()}
        return workspace.id, answer, answer

    answer, duplicate = _once("uninstall", slug, webhook_id, act)
    return jsonify({**answer, "duplicate": duplicate})


def _name(conn: Connection, workspace_id: int) -> str:
    return conn.execute(select(workspaces_table.c.name).where(workspaces_table.c.id == workspace_id)).scalar()
