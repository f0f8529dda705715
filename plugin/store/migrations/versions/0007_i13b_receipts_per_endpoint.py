"""Webhook receipts keyed per endpoint: a webhook-id reused on another endpoint is a new delivery.

Revision ID: 0007_i13b_receipts_per_endpoint
"""
from alembic import op

revision = "0007_i13b_receipts_per_endpoint"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter a primary key in place, so the table is copied.
    with op.batch_alter_table("webhook_receipts", recreate="auto") as batch:
        batch.drop_constraint("pk_webhook_receipts", type_="primary")
        batch.create_primary_key("pk_webhook_receipts", ["workspace_id", "endpoint", "webhook_id"])


def downgrade() -> None:
    # Receipts of one id on several endpoints cannot share the old key: keep the first.
    op.execute("DELETE FROM webhook_receipts WHERE EXISTS (SELECT 1 FROM webhook_receipts AS r "
               "WHERE r.workspace_id = webhook_receipts.workspace_id "
               "AND r.webhook_id = webhook_receipts.webhook_id AND r.received_at < webhook_receipts.received_at)")
    with op.batch_alter_table("webhook_receipts", recreate="auto") as batch:
        batch.drop_constraint("pk_webhook_receipts", type_="primary")
        batch.create_primary_key("pk_webhook_receipts", ["workspace_id", "webhook_id"])
