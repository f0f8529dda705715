"""Predictions, their models, and the scoring store.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import Json, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("goal_event", sa.String(255), nullable=False),
        sa.Column("goal_condition", Json, nullable=True),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("audience", Json, nullable=True),
        sa.Column("categories", Json, nullable=False),
        sa.Column("schedule", sa.String(16), nullable=False),
        sa.Column("retrain_days", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_model_id", sa.Integer, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("last_trained_at", UtcDateTime, nullable=True),
        sa.Column("last_scored_at", UtcDateTime, nullable=True),
        sa.Column("last_backtested_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_predictions_workspace_name"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name="fk_predictions_workspace_id_workspaces"),
    )
    op.create_table(
        "prediction_models",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("cutoff_at", UtcDateTime, nullable=False),
        sa.Column("model_text", sa.Text, nullable=False),
        sa.Column("calibration", Json, nullable=False),
        sa.Column("features", Json, nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("counts", Json, nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_models"),
        sa.UniqueConstraint("prediction_id", "version", name="uq_prediction_models_prediction_version"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE",
                                name="fk_prediction_models_prediction_id_predictions"),
    )
    op.create_table(
        "scores",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("scored_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", "user_id", name="pk_scores"),
    )
    op.create_index("ix_scores_prediction_score", "scores", ["prediction_id", "score"])
    op.create_index("ix_scores_prediction_category", "scores", ["prediction_id", "category"])
    # Prediction trainings: the queue of trainings asked for (a new prediction's first one at once);
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
    # A prediction's goal kind: `event` (will the user perform it?) or `churn` (will they not?).
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("goal_kind", sa.String(16), nullable=False, server_default="event"))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("goal_kind")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("archived_from")
    op.drop_index("ix_prediction_trainings_prediction_id", "prediction_trainings")
    op.drop_index("ix_prediction_trainings_state", "prediction_trainings")
    op.drop_table("prediction_trainings")
    op.drop_table("scores")
    op.drop_table("prediction_models")
    op.drop_table("predictions")
