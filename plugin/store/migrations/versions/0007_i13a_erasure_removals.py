"""Erasure removals: what erasure still has to remove from each sync destination.

Revision ID: 0007_i13a_erasure_removals
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import BigId, Json, UtcDateTime

revision = "0007_i13a_erasure_removals"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_table("erasure_removals")
