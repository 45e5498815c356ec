"""keys and sessions belong to a membership; ids never reused; a key rotates once

- ``api_keys.membership_id`` and ``dashboard_sessions.membership_id``: a key or a session
  works only while the membership it was made under exists. Removing a member ends them for
  good (adding the same person back makes a new membership), and the foreign key makes a
  key or session created while the membership is being removed fail instead of surviving.
- SQLite hands out the highest id again once its row is deleted, unless the table is
  ``AUTOINCREMENT``: every table with an integer id becomes one (rebuilt, its rows kept).
  PostgreSQL's sequences never hand an id out twice already.
- ``api_keys.rotated_from_id`` is unique: a key has one successor at most.

Revision ID: 7a4e2c91d0b3
Revises: 3c1d7e9a5b20
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a4e2c91d0b3"
down_revision: str | None = "3c1d7e9a5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents first: each rebuilt table's foreign keys point at tables already rebuilt.
ID_TABLES = ("workspaces", "users", "memberships", "projects", "tasks", "audit_events")

_BACKFILL_KEYS = """
UPDATE api_keys SET membership_id = (
    SELECT m.id FROM memberships AS m
    WHERE m.workspace_id = api_keys.workspace_id AND m.user_id = api_keys.created_by_id
)
"""
_BACKFILL_SESSIONS = """
UPDATE dashboard_sessions SET membership_id = (
    SELECT m.id FROM memberships AS m
    WHERE m.workspace_id = dashboard_sessions.workspace_id
      AND m.user_id = dashboard_sessions.user_id
)
"""
# A key rotated twice (possible before this revision) keeps its first successor's link.
_ONE_SUCCESSOR = """
UPDATE api_keys SET rotated_from_id = NULL
WHERE id NOT IN (SELECT min(id) FROM api_keys WHERE rotated_from_id IS NOT NULL
                 GROUP BY rotated_from_id)
"""


def _autoincrement() -> dict[str, object]:
    if op.get_bind().dialect.name == "sqlite":
        return {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}}
    return {}


def upgrade() -> None:
    for table in ID_TABLES:
        with op.batch_alter_table(table, **_autoincrement()):  # type: ignore[arg-type]
            pass

    op.add_column("dashboard_sessions", sa.Column("membership_id", sa.Integer(), nullable=True))
    op.execute(_BACKFILL_SESSIONS)
    op.execute("DELETE FROM dashboard_sessions WHERE membership_id IS NULL")
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.alter_column("membership_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            batch.f("fk_dashboard_sessions_membership_id_memberships"),
            "memberships",
            ["membership_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(batch.f("ix_dashboard_sessions_membership_id"), ["membership_id"])

    op.add_column("api_keys", sa.Column("membership_id", sa.Integer(), nullable=True))
    op.execute(_BACKFILL_KEYS)
    op.execute(_ONE_SUCCESSOR)
    with op.batch_alter_table("api_keys", **_autoincrement()) as batch:  # type: ignore[arg-type]
        batch.create_foreign_key(
            batch.f("fk_api_keys_membership_id_memberships"),
            "memberships",
            ["membership_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(batch.f("ix_api_keys_membership_id"), ["membership_id"])
        batch.create_unique_constraint(batch.f("uq_api_keys_rotated_from_id"), ["rotated_from_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(batch.f("uq_api_keys_rotated_from_id"), type_="unique")
        batch.drop_index(batch.f("ix_api_keys_membership_id"))
        batch.drop_constraint(batch.f("fk_api_keys_membership_id_memberships"), type_="foreignkey")
        batch.drop_column("membership_id")
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.drop_index(batch.f("ix_dashboard_sessions_membership_id"))
        batch.drop_constraint(
            batch.f("fk_dashboard_sessions_membership_id_memberships"), type_="foreignkey"
        )
        batch.drop_column("membership_id")
    # The tables stay AUTOINCREMENT on SQLite: harmless, and ids stay unique.
