"""Outbox rows in flight: an index so each delivery pass finds a crashed worker's `sending`
rows (whose lease ran out) without scanning the outbox.

Revision ID: 0007_i14_outbox_in_flight
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_i14_outbox_in_flight"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    in_flight = sa.text("status = 'sending'")
    op.create_index("ix_outbox_in_flight", "outbox", ["claim_expires"],
                    postgresql_where=in_flight, sqlite_where=in_flight)


def downgrade() -> None:
    op.drop_index("ix_outbox_in_flight", table_name="outbox")
