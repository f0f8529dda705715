"""A prediction's goal kind: `event` (will the user perform it?) or `churn` (will they not?).

Revision ID: 0007_i17_goal_kind
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_i17_goal_kind"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("goal_kind", sa.String(16), nullable=False, server_default="event"))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("goal_kind")
