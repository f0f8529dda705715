"""Scheduled jobs: the run log and the per-job leases.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import BigId, Json, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=True),
        sa.Column("job_id", sa.String(191), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("scheduled_at", UtcDateTime, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("counts", Json, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
        sa.UniqueConstraint("job_id", "run_key", name="uq_job_runs_job_run_key"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_job_runs_workspace_id_workspaces"),
    )
    op.create_index("ix_job_runs_workspace_id_id", "job_runs", ["workspace_id", "id"])
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"])
    op.create_table(
        "job_leases",
        sa.Column("job_id", sa.String(191), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_leases"),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("job_runs")
    # APScheduler's table is APScheduler's, but it belongs to the jobs feature being removed.
    op.execute("DROP TABLE IF EXISTS apscheduler_jobs")
