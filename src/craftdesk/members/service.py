"""Changing a member's role and removing a member, with the rules that hold however it is
done (the API or the command line): a workspace keeps one owner, and each change is audited."""

from craftdesk.audit.service import Actor, Target, record
from craftdesk.db import Transaction
from craftdesk.errors import Conflict
from craftdesk.members import queries
from craftdesk.workspaces.queries import MembershipRow
from craftdesk.workspaces.service import remove_member


async def keep_an_owner(tx: Transaction, membership: MembershipRow) -> None:
    """Refuse (409 ``last_owner``) to take the owner role from the workspace's last owner."""
    if membership.role != "owner":
        return
    # Locking the owners' rows makes two owners demoting each other at once take turns
    # (SQLite transactions hold the database's write lock already).
    if await queries.lock_owners(tx, membership.workspace_id) <= 1:
        raise Conflict(
            "A workspace keeps at least one owner. Make another member owner first.",
            code="last_owner",
        )


async def change_role(
    tx: Transaction, membership: MembershipRow, role: str, *, actor: Actor
) -> MembershipRow:
    """Give the member ``role``; returns the membership as it is now."""
    if role != "owner":
        await keep_an_owner(tx, membership)
    if membership.role == role:
        return membership
    await queries.set_role(tx, membership.id, role)
    await record(
        tx,
        workspace_id=membership.workspace_id,
        action="member.role_changed",
        actor=actor,
        target=Target("member", membership.id, membership.email),
        details={"from": membership.role, "to": role},
    )
    return membership._replace(role=role)


async def remove(tx: Transaction, membership: MembershipRow, *, actor: Actor) -> int:
    """Remove the member, revoking their keys and ending their sessions; returns how many
    keys were revoked."""
    await keep_an_owner(tx, membership)
    keys_revoked = await remove_member(tx, membership)
    await record(
        tx,
        workspace_id=membership.workspace_id,
        action="member.removed",
        actor=actor,
        target=Target("member", membership.id, membership.email),
        details={"role": membership.role, "keys_revoked": keys_revoked},
    )
    return keys_revoked
