"""The SQL of dashboard sessions and sign-in throttling (the key gate has its own)."""

import datetime as dt

from craftdesk.db import Queries, Row, Transaction

# A signed-in session with its user, membership and workspace: everything ``SignedIn`` holds.
_SIGNED_IN = """s.id, s.csrf_token, s.expires_at, u.id AS user_id, u.email, m.id AS membership_id,
                m.role, w.id AS workspace_id, w.slug, w.name, w.plan, w.billing_anchor,
                w.quota_override"""


async def signed_in(db: Queries, session_digest: str) -> Row | None:
    return await db.fetchrow(
        f"""SELECT {_SIGNED_IN} FROM dashboard_sessions AS s
            JOIN users AS u ON u.id = s.user_id
            JOIN memberships AS m ON m.id = s.membership_id
            JOIN workspaces AS w ON w.id = s.workspace_id
            WHERE s.id = $1""",
        session_digest,
    )


async def account(db: Queries, workspace_slug: str, email: str) -> Row | None:
    """The user of ``email`` in the workspace: ``user_id``, ``password_hash``,
    ``membership_id``, ``role``, ``workspace_id``, ``slug``, ``name``, ``plan``,
    ``billing_anchor``, ``quota_override``."""
    return await db.fetchrow(
        """SELECT u.id AS user_id, u.password_hash, m.id AS membership_id, m.role,
                  w.id AS workspace_id, w.slug, w.name, w.plan, w.billing_anchor,
                  w.quota_override
           FROM users AS u
           JOIN memberships AS m ON m.user_id = u.id
           JOIN workspaces AS w ON w.id = m.workspace_id
           WHERE u.email = $1 AND w.slug = $2""",
        email,
        workspace_slug,
    )


async def insert_session(
    tx: Transaction,
    *,
    session_digest: str,
    user_id: int,
    workspace_id: int,
    membership_id: int,
    csrf_token: str,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    await tx.execute(
        """INSERT INTO dashboard_sessions (id, user_id, workspace_id, membership_id, csrf_token,
               created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_digest,
        user_id,
        workspace_id,
        membership_id,
        csrf_token,
        created_at,
        expires_at,
    )


async def delete_session(tx: Transaction, session_digest: str) -> None:
    await tx.execute("DELETE FROM dashboard_sessions WHERE id = $1", session_digest)


async def count_attempt(tx: Transaction, throttle: str, now: dt.datetime) -> Row:
    """Count one more attempt against ``throttle``: its ``failures`` and ``locked_until``
    after it (an expired lock starts the count over)."""
    row = await tx.write(
        """INSERT INTO login_throttle (account, failures) VALUES ($1, 1)
           ON CONFLICT (account) DO UPDATE SET
               failures = CASE WHEN login_throttle.locked_until <= $2 THEN 1
                               ELSE login_throttle.failures + 1 END,
               locked_until = CASE WHEN login_throttle.locked_until <= $2 THEN NULL
                                   ELSE login_throttle.locked_until END
           RETURNING failures, locked_until""",
        throttle,
        now,
    )
    assert row is not None
    return row


async def lock(tx: Transaction, throttle: str, until: dt.datetime) -> None:
    await tx.execute(
        """UPDATE login_throttle SET locked_until = $2
           WHERE account = $1 AND locked_until IS NULL""",
        throttle,
        until,
    )


async def forget(tx: Transaction, throttle: str) -> None:
    await tx.execute("DELETE FROM login_throttle WHERE account = $1", throttle)


async def uncount_failure(tx: Transaction, throttle: str) -> None:
    """Take back one failure of ``throttle`` (an attempt counted that did not fail)."""
    await tx.execute(
        """UPDATE login_throttle SET failures = failures - 1
           WHERE account = $1 AND locked_until IS NULL""",
        throttle,
    )
