"""Scoring runs (with their per-user scores, compressed) and backtests.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import Json, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("as_of", sa.BigInteger, nullable=False),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("users_scored", sa.Integer, nullable=False),
        sa.Column("expected_conversions", sa.Float, nullable=False),
        sa.Column("histogram", Json, nullable=False),
        sa.Column("categories", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scoring_runs"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE",
                                name="fk_scoring_runs_prediction_id_predictions"),
    )
    op.create_index("ix_scoring_runs_prediction_as_of", "scoring_runs", ["prediction_id", "as_of"])
    op.create_table(
        "scoring_run_chunks",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("users", sa.Integer, nullable=False),
        sa.Column("user_ids", sa.LargeBinary, nullable=False),
        sa.Column("scores", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_scoring_run_chunks"),
        sa.ForeignKeyConstraint(["run_id"], ["scoring_runs.id"], ondelete="CASCADE",
                                name="fk_scoring_run_chunks_run_id_scoring_runs"),
    )
    op.create_table(
        "backtests",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backtests"),
        sa.UniqueConstraint("run_id", name="uq_backtests_run_id"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE",
                                name="fk_backtests_prediction_id_predictions"),
        sa.ForeignKeyConstraint(["run_id"], ["scoring_runs.id"], ondelete="CASCADE",
                                name="fk_backtests_run_id_scoring_runs"),
    )


def downgrade() -> None:
    op.drop_table("backtests")
    op.drop_table("scoring_run_chunks")
    op.drop_table("scoring_runs")
