"""what limits a leaked key: IP allowlists, per-key rate limits, why a key was revoked

- ``api_keys.allowed_ips``: the CIDR ranges a key may be used from (JSON array; NULL: any).
- ``api_keys.rate_limit_requests`` / ``rate_limit_seconds``: the key's own rate limit.
- ``key_rate_windows``: the requests admitted per key and fixed window of its limit.
- ``api_keys.revoked_reason``: ``revoked``, ``member_removed``, ``rotated`` or ``leaked``;
  keys revoked before are ``revoked``.

Revision ID: b41d2e6f9a10
Revises: 7a4e2c91d0b3
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b41d2e6f9a10"
down_revision: str | None = "7a4e2c91d0b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("revoked_reason", sa.String(length=16), nullable=True))
    op.add_column("api_keys", sa.Column("allowed_ips", sa.JSON(), nullable=True))
    op.add_column("api_keys", sa.Column("rate_limit_requests", sa.Integer(), nullable=True))
    op.add_column("api_keys", sa.Column("rate_limit_seconds", sa.Integer(), nullable=True))
    op.execute("UPDATE api_keys SET revoked_reason = 'revoked' WHERE revoked_at IS NOT NULL")
    op.create_table(
        "key_rate_windows",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_rate_windows_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "window_start", name=op.f("pk_key_rate_windows")),
    )


def downgrade() -> None:
    op.drop_table("key_rate_windows")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit_seconds")
        batch.drop_column("rate_limit_requests")
        batch.drop_column("allowed_ips")
        batch.drop_column("revoked_reason")
