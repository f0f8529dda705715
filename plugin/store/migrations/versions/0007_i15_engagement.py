"""Engagement back and opt-outs: per-message engagement (delivered, opened, clicked, bounced,
spam report, unsubscribed) and per-channel unsubscribes.

Revision ID: 0007_i15_engagement
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import UtcDateTime

revision = "0007_i15_engagement"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.drop_table("unsubscribes")
    op.drop_table("outbox_engagement")
