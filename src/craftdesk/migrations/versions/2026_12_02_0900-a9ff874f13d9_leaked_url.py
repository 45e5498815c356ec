"""where a leaked key was found: ``api_keys.leaked_url``

Set when GitHub's secret scanning reports a live key (``revoked_reason = 'leaked'``), for the
dashboard's "found in public at <url>"; the audit event ``key.leaked`` records it too.

Revision ID: a9ff874f13d9
Revises: b41d2e6f9a10
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9ff874f13d9"
down_revision: str | None = "b41d2e6f9a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("leaked_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("leaked_url")
