"""Installing and uninstalling the plugin in a host account (a workspace).

Install creates or updates the workspace with the settings saved in the host's form. The
first install — and a reinstall after an uninstall — issues a fresh API key and webhook
secret, returned once: the key is stored hashed, the secret encrypted. Uninstall stops the
workspace at once (status `uninstalled`: no jobs, keys and webhooks refused) and its data is
deleted by `purge_uninstalled` after the grace period.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy import Connection, Engine, delete, select, update

from plugin import crypto, workspace_settings, workspaces
from plugin.errors import Forbidden
from plugin.store import transaction
from plugin.store.tables import api_keys, metadata, webhook_secrets
from plugin.store.tables import workspaces as workspaces_table
from plugin.store.types import utcnow

# Paths of the host-facing endpoints sit under /webhooks/<workspace>/…; these names would clash.
RESERVED_SLUGS = frozenset({workspaces.DEFAULT, "install", "uninstall", "events", "users"})


@dataclass(frozen=True)
class Installed:
    workspace: workspaces.Workspace
    name: str
    created: bool
    api_key: str | None = None         # only when credentials were issued by this call
    webhook_secret: str | None = None


def check_slug(slug: str) -> None:
    if slug in RESERVED_SLUGS:
        raise Forbidden(f"workspace {slug!r} is reserved and cannot be installed or uninstalled by the host",
                        code="reserved_workspace")


def install(conn: Connection, slug: str, name: str, settings: Mapping,
            keyring: crypto.Keyring, rotate_credentials: bool = False) -> Installed:
    """Create or update the workspace; issue credentials when it is new, reinstalled or asked to."""
    check_slug(slug)
    before = workspaces.find(conn, slug)
    workspace = workspaces.ensure_in(conn, slug, name)
    current = workspace_settings.read(conn, workspace.id, keyring) if before else {}
    settings = workspace_settings.validate(
        workspace_settings.keep_unchanged_secrets(settings, current), "settings")
    workspace_settings.write(conn, workspace.id, settings, keyring)
    issue = before is None or not before.active or rotate_credentials
    conn.execute(update(workspaces_table).where(workspaces_table.c.id == workspace.id)
                 .values(name=name, status=workspaces.ACTIVE, uninstalled_at=None))
    workspace = workspaces.Workspace(workspace.id, workspace.slug, workspaces.ACTIVE)
    if not issue:
        return Installed(workspace, name, created=False)
    # Old credentials die with the new ones' birth: the host keeps only what it is given now.
    conn.execute(delete(api_keys).where(api_keys.c.workspace_id == workspace.id))
    conn.execute(delete(webhook_secrets).where(webhook_secrets.c.workspace_id == workspace.id))
    api_key, secret = workspaces.new_api_key(), workspaces.new_webhook_secret()
    workspaces.add_api_key_in(conn, workspace, api_key, label="install")
    workspaces.add_webhook_secret_in(conn, workspace, secret, keyring)
    return Installed(workspace, name, created=before is None, api_key=api_key, webhook_secret=secret)


def uninstall(conn: Connection, slug: str, now: datetime | None = None) -> workspaces.Workspace:
    """Mark the workspace uninstalled (idempotent: the first uninstall time is kept)."""
    check_slug(slug)
    workspace = workspaces.get(conn, slug)
    conn.execute(update(workspaces_table)
                 .where(workspaces_table.c.id == workspace.id, workspaces_table.c.status == workspaces.ACTIVE)
                 .values(status=workspaces.UNINSTALLED, uninstalled_at=now or utcnow()))
    return workspaces.Workspace(workspace.id, workspace.slug, workspaces.UNINSTALLED)


def purge_uninstalled(engine: Engine, now: datetime | None = None, grace_days: int = 30) -> list[str]:
    """Delete every row of the workspaces uninstalled more than `grace_days` ago; return their slugs.

    Walks every table with a `workspace_id` column, children first, so tables added later are
    covered without being listed here. One transaction per workspace.
    """
    cutoff = (now or utcnow()) - timedelta(days=grace_days)
    with engine.connect() as conn:
        due = conn.execute(select(workspaces_table.c.id, workspaces_table.c.slug).where(
            workspaces_table.c.status == workspaces.UNINSTALLED,
            workspaces_table.c.uninstalled_at <= cutoff)).all()
    scoped = [t for t in reversed(metadata.sorted_tables)
              if "workspace_id" in t.c and t is not workspaces_table]
    purged = []
    for workspace_id, slug in due:
        with transaction(engine) as conn:
            # Checked again under the row lock: a reinstall since the query above keeps its data.
            still = conn.execute(select(workspaces_table.c.status).where(
                workspaces_table.c.id == workspace_id).with_for_update()).scalar()
            if still != workspaces.UNINSTALLED:
                continue
            for table in scoped:
                conn.execute(delete(table).where(table.c.workspace_id == workspace_id))
            conn.execute(delete(workspaces_table).where(workspaces_table.c.id == workspace_id))
        purged.append(slug)
    return purged
