"""Foundation: workspaces, credentials, webhook receipts, users, events.

Revision ID: 0001
Revises:
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from plugin.store.types import BigId, Json, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    workspaces = op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("settings", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    )
    # The embedded default serves one workspace, configured from the environment.
    op.bulk_insert(workspaces, [{"slug": "default", "name": "Default", "settings": {},
                                 "created_at": datetime.now(timezone.utc)}])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_api_keys_workspace_id_workspaces"),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_secrets"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_webhook_secrets_workspace_id_workspaces"),
    )
    op.create_index("ix_webhook_secrets_workspace_id", "webhook_secrets", ["workspace_id"])
    op.create_table(
        "webhook_receipts",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("webhook_id", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("response", Json, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        # Per endpoint: one webhook-id on two endpoints is two deliveries.
        sa.PrimaryKeyConstraint("workspace_id", "endpoint", "webhook_id", name="pk_webhook_receipts"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_webhook_receipts_workspace_id_workspaces"),
    )
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("workspace_id", "external_id", name="uq_users_workspace_external"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_users_workspace_id_workspaces"),
    )
    op.create_table(
        "event_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_types"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_event_types_workspace_name"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_event_types_workspace_id_workspaces"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("event_type_id", sa.Integer, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("properties", Json, nullable=True),
        sa.Column("event_key", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("workspace_id", "event_key", name="uq_events_workspace_key"),
    )
    op.create_index("ix_events_user_type_ts", "events", ["workspace_id", "user_id", "event_type_id", "ts"])
    op.create_index("ix_events_type_ts", "events", ["workspace_id", "event_type_id", "ts"])
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("webhook_id", sa.String(255), nullable=True),
        sa.Column("users_erased", sa.Integer, nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_erasures_workspace_id_workspaces"),
    )


def downgrade() -> None:
    for name in ("erasures", "events", "event_types", "users", "webhook_receipts",
                 "webhook_secrets", "api_keys", "workspaces"):
        op.drop_table(name)
