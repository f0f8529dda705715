"""Audiences: segments with versioned membership (snapshots and diffs); a covering score index.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import Json, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (prediction_id, category) → (prediction_id, category, score): same prefix, and a category
    # preview's sum of scores is then index-only.
    op.drop_index("ix_scores_prediction_category", table_name="scores")
    op.create_index("ix_scores_prediction_category_score", "scores", ["prediction_id", "category", "score"])
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("host_audience_id", sa.String(255), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("oldest_version", sa.Integer, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("refreshed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sa.UniqueConstraint("workspace_id", "host_audience_id", name="uq_segments_workspace_host_audience"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_segments_workspace_id_workspaces"),
    )
    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("removed", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "version", name="pk_segment_versions"),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], ondelete="CASCADE",
                                name="fk_segment_versions_segment_id_segments"),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("added_version", sa.Integer, nullable=False),
        sa.Column("removed_version", sa.Integer, nullable=True),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "user_id", "added_version", name="pk_segment_members"),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], ondelete="CASCADE",
                                name="fk_segment_members_segment_id_segments"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("segment_members")
    op.drop_table("segment_versions")
    op.drop_table("segments")
    op.drop_index("ix_scores_prediction_category_score", table_name="scores")
    op.create_index("ix_scores_prediction_category", "scores", ["prediction_id", "category"])
