"""Changing a member's role and removing a member, with the rules that hold however it is
done (the API or the command line): a workspace keeps one owner, and each change is audited."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import Actor, Target, record
from craftdesk.errors import Conflict
from craftdesk.workspaces.models import Membership, User
from craftdesk.workspaces.service import remove_member


async def membership_by_email(
    session: AsyncSession, workspace_id: int, email: str
) -> Membership | None:
    return await session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id, User.email == email.strip().lower())
    )


async def keep_an_owner(session: AsyncSession, membership: Membership) -> None:
    """Refuse (409 ``last_owner``) to take the owner role from the workspace's last owner."""
    if membership.role != "owner":
        return
    # Locking the owners' rows makes two owners demoting each other at once take turns
    # (SQLite transactions are serialized by BEGIN IMMEDIATE already).
    owners = await session.scalars(
        select(Membership.id)
        .where(Membership.workspace_id == membership.workspace_id, Membership.role == "owner")
        .with_for_update()
    )
    if len(owners.all()) <= 1:
        raise Conflict(
            "A workspace keeps at least one owner. Make another member owner first.",
            code="last_owner",
        )


async def change_role(
    session: AsyncSession, membership: Membership, email: str, role: str, *, actor: Actor
) -> bool:
    """Give the member ``role``; returns whether it changed."""
    if role != "owner":
        await keep_an_owner(session, membership)
    if membership.role == role:
        return False
    record(
        session,
        workspace_id=membership.workspace_id,
        action="member.role_changed",
        actor=actor,
        target=Target("member", membership.id, email),
        details={"from": membership.role, "to": role},
    )
    membership.role = role
    return True


async def remove(
    session: AsyncSession, membership: Membership, email: str, *, actor: Actor
) -> int:
    """Remove the member, revoking their keys and ending their sessions; returns how many
    keys were revoked."""
    await keep_an_owner(session, membership)
    target = Target("member", membership.id, email)
    workspace_id, role = membership.workspace_id, membership.role
    keys_revoked = await remove_member(session, membership)
    record(
        session,
        workspace_id=workspace_id,
        action="member.removed",
        actor=actor,
        target=target,
        details={"role": role, "keys_revoked": keys_revoked},
    )
    return keys_revoked
