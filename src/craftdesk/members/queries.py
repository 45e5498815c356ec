"""The SQL of team members (memberships and their users' emails)."""

from craftdesk.db import Queries, Row, Transaction

MEMBER = "m.id, m.user_id, u.email, m.role, m.created_at"


async def list_members(db: Queries, workspace_id: int, after: int, limit: int) -> list[Row]:
    return await db.fetch(
        f"""SELECT {MEMBER} FROM memberships AS m JOIN users AS u ON u.id = m.user_id
            WHERE m.workspace_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3""",
        workspace_id,
        after,
        limit,
    )


async def lock_owners(tx: Transaction, workspace_id: int) -> int:
    """How many owners the workspace has, their rows locked for the rest of the transaction
    on PostgreSQL."""
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    rows = await tx.fetch(
        f"SELECT id FROM memberships WHERE workspace_id = $1 AND role = 'owner'{lock}",
        workspace_id,
    )
    return len(rows)


async def set_role(tx: Transaction, membership_id: int, role: str) -> None:
    await tx.execute("UPDATE memberships SET role = $2 WHERE id = $1", membership_id, role)
