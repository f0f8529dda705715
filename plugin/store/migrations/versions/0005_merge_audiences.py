"""Join the audiences branch (segments, snapshots, changes) to the main line.

Revision ID: 0005
Revises: 0004, 0003a
"""
revision = "0005"
down_revision = ("0004", "0003a")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
