"""The SQL of reading the audit trail (``craftdesk.audit.service`` writes it)."""

from craftdesk.db import Queries, Row


async def list_events(db: Queries, workspace_id: int, up_to: int, limit: int) -> list[Row]:
    """A page of the workspace's events, newest first."""
    return await db.fetch(
        """SELECT id, occurred_at, action, actor_type, actor_user_id, actor_email, actor_key_id,
                  target_type, target_id, target_label, details, client_ip
           FROM audit_events WHERE workspace_id = $1 AND id <= $2 ORDER BY id DESC LIMIT $3""",
        workspace_id,
        up_to,
        limit,
    )
