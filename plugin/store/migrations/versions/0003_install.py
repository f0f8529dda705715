"""Install and settings: workspace status and encrypted secret settings; webhook secrets encrypted.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from plugin.store.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

webhook_secrets = sa.table("webhook_secrets", sa.column("id", sa.Integer), sa.column("secret", sa.String),
                           sa.column("secret_encrypted", sa.Text))


def _keyring():
    # Only needed when a store already holds plaintext secrets: the key the app will use.
    from plugin import crypto
    return crypto.current()


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite a batch would drop and recreate
    # `workspaces`, and the drop cascades to every row that references it.
    op.add_column("workspaces", sa.Column("status", sa.String(16), nullable=False, server_default="active"))
    op.add_column("workspaces", sa.Column("uninstalled_at", UtcDateTime, nullable=True))
    op.add_column("workspaces", sa.Column("secret_settings", sa.Text, nullable=True))
    op.add_column("webhook_secrets", sa.Column("secret_encrypted", sa.Text, nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(webhook_secrets.c.id, webhook_secrets.c.secret)).all()
    if rows:
        keyring = _keyring()
        for row in rows:
            conn.execute(webhook_secrets.update().where(webhook_secrets.c.id == row.id)
                         .values(secret_encrypted=keyring.encrypt(row.secret)))
    with op.batch_alter_table("webhook_secrets") as batch:
        batch.alter_column("secret_encrypted", existing_type=sa.Text, nullable=False)
        batch.drop_column("secret")


def downgrade() -> None:
    op.add_column("webhook_secrets", sa.Column("secret", sa.String(255), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(webhook_secrets.c.id, webhook_secrets.c.secret_encrypted)).all()
    if rows:
        keyring = _keyring()
        for row in rows:
            conn.execute(webhook_secrets.update().where(webhook_secrets.c.id == row.id)
                         .values(secret=keyring.decrypt(row.secret_encrypted)))
    with op.batch_alter_table("webhook_secrets") as batch:
        batch.alter_column("secret", existing_type=sa.String(255), nullable=False)
        batch.drop_column("secret_encrypted")
    for name in ("secret_settings", "uninstalled_at", "status"):
        op.drop_column("workspaces", name)
