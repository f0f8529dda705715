"""Join the campaigns branch (outbox, runs, syncs, write-back) to the main line.

Revision ID: 0006
Revises: 0005, 0003k
"""
revision = "0006"
down_revision = ("0005", "0003k")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
