"""each key's request log, its outcomes per day, where it was last used from, and what its
alerts are computed from (the addresses it was used from, its outcomes of the last minutes,
when it was last tried while revoked or expired); and the index the dashboard's key list
reads (a workspace's keys by id: without it, PostgreSQL walked the whole table's primary key
backwards, 1 s a page with a million keys in other workspaces)

Revision ID: c3e8a1f0b7d2
Revises: a9ff874f13d9
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from craftdesk.db import UTCDateTime

revision: str = "c3e8a1f0b7d2"
down_revision: str | None = "a9ff874f13d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_api_keys_workspace_id_id", "api_keys", ["workspace_id", "id"])
    op.add_column("api_keys", sa.Column("last_used_ip", sa.String(length=45), nullable=True))
    op.add_column(
        "api_keys", sa.Column("last_used_user_agent", sa.String(length=256), nullable=True)
    )
    op.add_column("api_keys", sa.Column("last_refused_at", UTCDateTime(), nullable=True))
    op.add_column("api_keys", sa.Column("refused_since", UTCDateTime(), nullable=True))
    op.create_table(
        "key_ips",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_ips_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "ip", name=op.f("pk_key_ips")),
    )
    op.create_table(
        "key_minute_outcomes",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_minute_outcomes_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "minute", name=op.f("pk_key_minute_outcomes")),
    )
    op.create_table(
        "key_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_requests_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_requests")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_key_requests_api_key_id_id", "key_requests", ["api_key_id", "id"])
    op.create_index("ix_key_requests_at", "key_requests", ["at"])
    op.create_table(
        "key_daily_outcomes",
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_daily_outcomes_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "day", "code", name=op.f("pk_key_daily_outcomes")),
    )


def downgrade() -> None:
    op.drop_table("key_minute_outcomes")
    op.drop_table("key_ips")
    op.drop_table("key_daily_outcomes")
    op.drop_index("ix_key_requests_at", table_name="key_requests")
    op.drop_index("ix_key_requests_api_key_id_id", table_name="key_requests")
    op.drop_table("key_requests")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("refused_since")
        batch.drop_column("last_refused_at")
        batch.drop_column("last_used_user_agent")
        batch.drop_column("last_used_ip")
    op.drop_index("ix_api_keys_workspace_id_id", table_name="api_keys")
