"""Prediction trainings: the queue of trainings asked for (a new prediction's first one at once);
and the status an archived prediction had, so that restoring it gives that status back.

Revision ID: 0007_i16_trainings
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import Json, UtcDateTime

revision = "0007_i16_trainings"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_trainings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("claim_expires", sa.BigInteger, nullable=True),
        sa.Column("model_id", sa.Integer, nullable=True),
        sa.Column("details", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_trainings"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE",
                                name="fk_prediction_trainings_prediction_id_predictions"),
    )
    op.create_index("ix_prediction_trainings_state", "prediction_trainings", ["state"])
    op.create_index("ix_prediction_trainings_prediction_id", "prediction_trainings", ["prediction_id"])
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("archived_from", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("archived_from")
    op.drop_index("ix_prediction_trainings_prediction_id", "prediction_trainings")
    op.drop_index("ix_prediction_trainings_state", "prediction_trainings")
    op.drop_table("prediction_trainings")
