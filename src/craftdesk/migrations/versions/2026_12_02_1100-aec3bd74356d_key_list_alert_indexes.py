"""the indexes the dashboard's key list reads its alerts' hints through: a key's addresses by
when they were first seen, and its minutes with refused requests (a partial index: most
minutes have none). Without them, each page read every minute of the last hour of each of
its keys, and every address a key was ever used from (2 ms a page of 24 busy keys on SQLite,
on the event loop)

Revision ID: aec3bd74356d
Revises: c3e8a1f0b7d2
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "aec3bd74356d"
down_revision: str | None = "c3e8a1f0b7d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSED = sa.text("failed > 0")


def upgrade() -> None:
    op.create_index("ix_key_ips_api_key_id_first_seen", "key_ips", ["api_key_id", "first_seen"])
    op.create_index(
        "ix_key_minute_outcomes_refused",
        "key_minute_outcomes",
        ["api_key_id", "minute"],
        sqlite_where=REFUSED,
        postgresql_where=REFUSED,
    )


def downgrade() -> None:
    op.drop_index("ix_key_minute_outcomes_refused", table_name="key_minute_outcomes")
    op.drop_index("ix_key_ips_api_key_id_first_seen", table_name="key_ips")
