"""Campaigns: definitions, runs, the durable outbox, dead addresses, circuit breakers,
score write-back state, and segment destinations with their last-pushed membership.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import BigId, Json, UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("audience", Json, nullable=True),
        sa.Column("tiers", Json, nullable=False),
        sa.Column("schedule", Json, nullable=False),
        sa.Column("remessage_after_days", sa.Integer, nullable=True),
        sa.Column("preset", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_run_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_campaigns_workspace_name"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_campaigns_workspace_id_workspaces"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE",
                                name="fk_campaigns_prediction_id_predictions"),
    )
    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("run_key", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_ts", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.Integer, nullable=True),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("goal_event", sa.String(255), nullable=False),
        sa.Column("counts", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_runs"),
        sa.UniqueConstraint("campaign_id", "run_key", name="uq_campaign_runs_campaign_key"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name="fk_campaign_runs_campaign_id_campaigns"),
    )
    op.create_table(
        "outbox",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(36), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claim_expires", sa.BigInteger, nullable=True),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("sent_ts", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "user_id", "channel", name="pk_outbox"),
    )
    due = sa.text("status IN ('pending', 'failed')")
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"], postgresql_where=due, sqlite_where=due)
    op.create_index("ix_outbox_user_campaign", "outbox", ["user_id", "campaign_id"])
    # Rows marked in flight before their request is sent; a pass settles the expired ones.
    in_flight = sa.text("status = 'sending'")
    op.create_index("ix_outbox_in_flight", "outbox", ["claim_expires"],
                    postgresql_where=in_flight, sqlite_where=in_flight)
    op.create_table(
        "dead_addresses",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "channel", "address_hash", name="pk_dead_addresses"),
    )
    op.create_table(
        "connector_breakers",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("open_until", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "connector", name="pk_connector_breakers"),
    )
    op.create_table(
        "score_writebacks",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("written_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", "user_id", name="pk_score_writebacks"),
    )
    op.create_table(
        "segment_destinations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("segment_id", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("audience_id", sa.String(255), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_synced_at", UtcDateTime, nullable=True),
        sa.Column("last_synced_version", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_segment_destinations"),
        sa.UniqueConstraint("segment_id", "connector", "audience_id",
                            name="uq_segment_destinations_target"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_segment_destinations_workspace_id_workspaces"),
    )
    op.create_table(
        "destination_members",
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("synced_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("destination_id", "user_id", name="pk_destination_members"),
        sa.ForeignKeyConstraint(["destination_id"], ["segment_destinations.id"], ondelete="CASCADE",
                                name="fk_destination_members_destination_id_segment_destinations"),
    )
    op.create_table(
        "segment_syncs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("segment_version", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segment_syncs"),
        sa.ForeignKeyConstraint(["destination_id"], ["segment_destinations.id"], ondelete="CASCADE",
                                name="fk_segment_syncs_destination_id_segment_destinations"),
    )
    op.create_index("ix_segment_syncs_destination_id", "segment_syncs", ["destination_id"])
    # Idempotency keys are computed by the database while planning (uuid5, as Python's);
    # uuid-ossp is a trusted extension since PostgreSQL 13, so the schema owner may create it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    # What erasure still has to remove from each sync destination (no user_id: the erase sweep
    # leaves it, and the next sync sends the removals).
    op.create_table(
        "erasure_removals",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("member_id", sa.String(255), nullable=False),
        sa.Column("identifiers", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasure_removals"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_erasure_removals_workspace_id_workspaces"),
        sa.ForeignKeyConstraint(["destination_id"], ["segment_destinations.id"], ondelete="CASCADE",
                                name="fk_erasure_removals_destination_id_segment_destinations"),
        sa.UniqueConstraint("destination_id", "member_id", name="uq_erasure_removals_destination_member"),
    )
    # Engagement per outbox row (delivered, opened, clicked…) and opt-outs per channel.
    op.create_table(
        "outbox_engagement",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("delivered_ts", sa.BigInteger, nullable=True),
        sa.Column("opened_ts", sa.BigInteger, nullable=True),
        sa.Column("clicked_ts", sa.BigInteger, nullable=True),
        sa.Column("bounced_ts", sa.BigInteger, nullable=True),
        sa.Column("bounce", sa.String(16), nullable=True),
        sa.Column("dropped_ts", sa.BigInteger, nullable=True),
        sa.Column("complained_ts", sa.BigInteger, nullable=True),
        sa.Column("unsubscribed_ts", sa.BigInteger, nullable=True),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "user_id", "channel", name="pk_outbox_engagement"),
    )
    op.create_table(
        "unsubscribes",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("written_back_at", UtcDateTime, nullable=True),
        sa.Column("write_back_error", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", "channel", name="pk_unsubscribes"),
    )


def downgrade() -> None:
    for name in ("unsubscribes", "outbox_engagement", "erasure_removals", "segment_syncs", "destination_members", "segment_destinations", "score_writebacks",
                 "connector_breakers", "dead_addresses", "outbox", "campaign_runs", "campaigns"):
        op.drop_table(name)
