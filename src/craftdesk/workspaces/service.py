"""Creating workspaces and members, and changing plans: shared by the CLI and the API."""

import re
import secrets

from craftdesk.audit.service import CLI, Actor, Target, record
from craftdesk.auth.passwords import hash_password
from craftdesk.db import Queries, Transaction, utcnow
from craftdesk.errors import Conflict, Unprocessable
from craftdesk.workspaces import queries
from craftdesk.workspaces.queries import MembershipRow, WorkspaceRow


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50]
    return slug or "workspace"


async def create_workspace(
    tx: Transaction,
    *,
    name: str,
    owner_email: str,
    owner_password: str | None,
    plan: str = "free",
) -> WorkspaceRow:
    slug = slugify(name)
    if await queries.workspace_by_slug(tx, slug) is not None:
        slug = f"{slug}-{secrets.token_hex(3)}"
    workspace = await queries.insert_workspace(tx, name, slug, plan, utcnow())
    await add_member(tx, workspace, email=owner_email, password=owner_password, role="owner")
    return workspace


async def add_member(
    tx: Transaction,
    workspace: WorkspaceRow,
    *,
    email: str,
    password: str | None,
    role: str,
    actor: Actor = CLI,
) -> MembershipRow:
    """Add a user (created if new, with ``password``; an existing user keeps their password)
    to the workspace."""
    email = email.strip().lower()
    now = utcnow()
    user = await queries.user_by_email(tx, email)
    if user is None:
        if not password:
            raise Unprocessable(f"{email} has no account yet: a password is needed for it.")
        user_id = await queries.insert_user(tx, email, hash_password(password), now)
    else:
        user_id = user["id"]
        if await queries.membership_of_user(tx, workspace.id, user_id) is not None:
            raise Conflict(f"{email} is already a member of {workspace.slug}.")
    membership_id = await queries.insert_membership(tx, workspace.id, user_id, role, now)
    await record(
        tx,
        workspace_id=workspace.id,
        action="member.added",
        actor=actor,
        target=Target("member", membership_id, email),
        details={"role": role},
    )
    return MembershipRow(membership_id, workspace.id, user_id, role, now, email)


async def remove_member(tx: Transaction, membership: MembershipRow) -> int:
    """Remove the membership, revoke every key its user made here, and end their sessions.
    Returns how many keys were revoked.

    The membership goes first. Deleting its row waits for the keys and sessions being
    created under it right now (their foreign keys hold it), and makes any created after
    fail; its sessions go with it (cascade), its keys lose it (``membership_id`` NULL) and
    are then revoked, those created while it was being removed included. Adding the person
    back makes a new membership: nothing of the old one works again.
    """
    await queries.delete_membership(tx, membership.id)
    return await queries.revoke_orphaned_keys(
        tx, membership.workspace_id, membership.user_id, utcnow()
    )


async def get_workspace(db: Queries, slug: str) -> WorkspaceRow | None:
    return await queries.workspace_by_slug(db, slug)
