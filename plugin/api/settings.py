"""GET and PATCH /v1/settings: the workspace's integration settings, secrets redacted."""
from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, fields
from sqlalchemy import select

from plugin import crypto, store, workspace_settings
from plugin.api import v1
from plugin.api.docs import api_doc, json_schema
from plugin.api.install import SHOWN_SETTINGS_REF, WorkspaceSchema
from plugin.api.requests import json_body
from plugin.errors import ValidationFailed
from plugin.store.tables import workspaces as workspaces_table

bp = v1.blueprint("settings", __name__, "/settings")

PATCH_REF = json_schema("WorkspaceSettingsPatch", workspace_settings.patch_schema)


class SettingsSchema(Schema):
    workspace = fields.Nested(WorkspaceSchema, required=True)
    settings = fields.Dict(required=True, metadata={"allOf": [SHOWN_SETTINGS_REF]})


def _answer(conn, keyring: crypto.Keyring) -> dict:
    workspace = v1.workspace()
    name = conn.execute(select(workspaces_table.c.name).where(workspaces_table.c.id == workspace.id)).scalar()
    settings = workspace_settings.read(conn, workspace.id, keyring)
    return {"workspace": {"slug": workspace.slug, "name": name, "status": workspace.status},
            "settings": workspace_settings.redact(settings)}


@bp.get("")
@api_doc(summary="The workspace's settings (secrets redacted)", tags=["settings"],
         responses={200: SettingsSchema}, errors=(401, 429))
def show():
    with store.engine().connect() as conn:
        return jsonify(_answer(conn, crypto.current()))


@bp.patch("")
@api_doc(summary="Change the workspace's settings", tags=["settings"], body=PATCH_REF,
         responses={200: SettingsSchema}, errors=(400, 401, 413, 415, 429),
         description="A JSON merge patch (RFC 7386): objects merge, null removes a field. A secret "
                     "sent as \"********\" keeps its value, unless its section's URL or host changes: "
                     "then that section's secrets are cleared and must be sent again. The result is validated as a whole "
                     "against manifest.json's workspace_settings; nothing is saved on error.")
def change():
    patch = json_body()
    if not isinstance(patch, dict):
        raise ValidationFailed("send a JSON object (a merge patch of the settings)", code="invalid_settings",
                               details={"settings": ["Not an object."]})
    keyring = crypto.current()
    workspace = v1.workspace()
    with store.transaction(store.engine()) as conn:
        current = workspace_settings.read(conn, workspace.id, keyring)
        merged = workspace_settings.keep_unchanged_secrets(workspace_settings.merge_patch(current, patch), current,
                                                           sent=patch)
        workspace_settings.write(conn, workspace.id, workspace_settings.validate(merged), keyring)
        return jsonify(_answer(conn, keyring))
