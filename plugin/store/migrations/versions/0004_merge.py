"""Join the branches built side by side (install, jobs, scoring runs) into one head.

Revision ID: 0004
Revises: 0003c, 0003j, 0003p
"""
revision = "0004"
down_revision = ("0003c", "0003j", "0003p")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
