"""Creating workspaces and members, and changing plans: shared by the CLI and the API."""

import re
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import CLI, Actor, Target, record
from craftdesk.auth.passwords import hash_password
from craftdesk.db import utcnow
from craftdesk.errors import Conflict, Unprocessable
from craftdesk.keys.models import ApiKey
from craftdesk.workspaces.models import Membership, User, Workspace


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50]
    return slug or "workspace"


async def create_workspace(
    session: AsyncSession,
    *,
    name: str,
    owner_email: str,
    owner_password: str | None,
    plan: str = "free",
) -> Workspace:
    slug = slugify(name)
    if await session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        slug = f"{slug}-{secrets.token_hex(3)}"
    workspace = Workspace(name=name, slug=slug, plan=plan)
    session.add(workspace)
    await session.flush()
    await add_member(
        session, workspace, email=owner_email, password=owner_password, role="owner"
    )
    return workspace


async def add_member(
    session: AsyncSession,
    workspace: Workspace,
    *,
    email: str,
    password: str | None,
    role: str,
    actor: Actor = CLI,
) -> Membership:
    """Add a user (created if new, with ``password``; an existing user keeps their password)
    to the workspace."""
    email = email.strip().lower()
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        if not password:
            raise Unprocessable(f"{email} has no account yet: a password is needed for it.")
        user = User(email=email, password_hash=hash_password(password))
        session.add(user)
        await session.flush()
    existing = await session.scalar(
        select(Membership).where(
            Membership.workspace_id == workspace.id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        raise Conflict(f"{email} is already a member of {workspace.slug}.")
    membership = Membership(workspace_id=workspace.id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    record(
        session,
        workspace_id=workspace.id,
        action="member.added",
        actor=actor,
        target=Target("member", membership.id, email),
        details={"role": role},
    )
    return membership


async def remove_member(session: AsyncSession, membership: Membership) -> int:
    """Remove the membership, revoke every key its user made here, and end their sessions.
    Returns how many keys were revoked.

    The membership goes first. Deleting its row waits for the keys and sessions being
    created under it right now (their foreign keys hold it), and makes any created after
    fail; its sessions go with it (cascade), its keys lose it (``membership_id`` NULL) and
    are then revoked, those created while it was being removed included. Adding the person
    back makes a new membership: nothing of the old one works again.
    """
    await session.execute(delete(Membership).where(Membership.id == membership.id))
    revoked = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.workspace_id == membership.workspace_id,
            ApiKey.created_by_id == membership.user_id,
            ApiKey.membership_id.is_(None),
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return revoked.rowcount  # type: ignore[attr-defined, no-any-return]


async def get_workspace(session: AsyncSession, slug: str) -> Workspace | None:
    return await session.scalar(select(Workspace).where(Workspace.slug == slug))
