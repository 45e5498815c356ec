"""The SQL of workspaces, users and memberships."""

import datetime as dt
from typing import NamedTuple

from craftdesk.db import Queries, Row, Transaction

WORKSPACE = "id, name, slug, plan, quota_override, billing_anchor, created_at"
MEMBERSHIP = "m.id, m.workspace_id, m.user_id, m.role, m.created_at, u.email"
_MEMBERSHIPS = f"SELECT {MEMBERSHIP} FROM memberships AS m JOIN users AS u ON u.id = m.user_id"


class WorkspaceRow(NamedTuple):
    id: int
    name: str
    slug: str
    plan: str
    quota_override: int | None
    billing_anchor: dt.datetime
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Row) -> "WorkspaceRow":
        return cls(*row)


class MembershipRow(NamedTuple):
    """A membership with its user's email."""

    id: int
    workspace_id: int
    user_id: int
    role: str
    created_at: dt.datetime
    email: str

    @classmethod
    def of(cls, row: Row) -> "MembershipRow":
        return cls(*row)


async def workspace_by_slug(db: Queries, slug: str) -> WorkspaceRow | None:
    row = await db.fetchrow(f"SELECT {WORKSPACE} FROM workspaces WHERE slug = $1", slug)
    return None if row is None else WorkspaceRow.of(row)


async def workspace_by_id(db: Queries, workspace_id: int) -> WorkspaceRow | None:
    row = await db.fetchrow(f"SELECT {WORKSPACE} FROM workspaces WHERE id = $1", workspace_id)
    return None if row is None else WorkspaceRow.of(row)


async def insert_workspace(
    tx: Transaction, name: str, slug: str, plan: str, now: dt.datetime
) -> WorkspaceRow:
    row = await tx.write(
        f"""INSERT INTO workspaces (name, slug, plan, billing_anchor, created_at)
            VALUES ($1, $2, $3, $4, $4) RETURNING {WORKSPACE}""",
        name,
        slug,
        plan,
        now,
    )
    assert row is not None
    return WorkspaceRow.of(row)


async def set_plan(tx: Transaction, workspace_id: int, plan: str | None, quota: int | None) -> None:
    """Set the plan (``None``: keep it) and the quota override (``None``: the plan's)."""
    await tx.execute(
        "UPDATE workspaces SET plan = COALESCE($2, plan), quota_override = $3 WHERE id = $1",
        workspace_id,
        plan,
        quota,
    )


async def user_by_email(db: Queries, email: str) -> Row | None:
    """The user's ``id`` and ``password_hash``."""
    return await db.fetchrow("SELECT id, password_hash FROM users WHERE email = $1", email)


async def insert_user(tx: Transaction, email: str, password_hash: str, now: dt.datetime) -> int:
    row = await tx.write(
        """INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
           RETURNING id""",
        email,
        password_hash,
        now,
    )
    assert row is not None
    return int(row["id"])


async def insert_membership(
    tx: Transaction, workspace_id: int, user_id: int, role: str, now: dt.datetime
) -> int:
    row = await tx.write(
        """INSERT INTO memberships (workspace_id, user_id, role, created_at)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        workspace_id,
        user_id,
        role,
        now,
    )
    assert row is not None
    return int(row["id"])


async def membership(db: Queries, workspace_id: int, membership_id: int) -> MembershipRow | None:
    row = await db.fetchrow(
        f"{_MEMBERSHIPS} WHERE m.id = $1 AND m.workspace_id = $2",
        membership_id,
        workspace_id,
    )
    return None if row is None else MembershipRow.of(row)


async def membership_by_email(db: Queries, workspace_id: int, email: str) -> MembershipRow | None:
    row = await db.fetchrow(
        f"{_MEMBERSHIPS} WHERE m.workspace_id = $1 AND u.email = $2",
        workspace_id,
        email,
    )
    return None if row is None else MembershipRow.of(row)


async def membership_of_user(db: Queries, workspace_id: int, user_id: int) -> int | None:
    membership_id: int | None = await db.fetchval(
        "SELECT id FROM memberships WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
    )
    return membership_id


async def delete_membership(tx: Transaction, membership_id: int) -> None:
    await tx.execute("DELETE FROM memberships WHERE id = $1", membership_id)


async def revoke_orphaned_keys(
    tx: Transaction, workspace_id: int, user_id: int, now: dt.datetime
) -> int:
    """Revoke the user's keys of the workspace left without a membership."""
    return await tx.execute(
        """UPDATE api_keys SET revoked_at = $3, revoked_reason = 'member_removed'
           WHERE workspace_id = $1 AND created_by_id = $2 AND membership_id IS NULL
             AND revoked_at IS NULL""",
        workspace_id,
        user_id,
        now,
    )
