"""Issuing, revoking and rotating keys: shared by the dashboard routes and the CLI."""

import datetime as dt
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import Action, Actor, Target, record
from craftdesk.auth.tokens import IssuedKey, display_prefix, generate_key, hash_key
from craftdesk.db import utcnow
from craftdesk.errors import Conflict, Forbidden
from craftdesk.keys.models import ApiKey
from craftdesk.workspaces.models import Workspace

KeyStatus = Literal["active", "expired", "revoked"]
MAX_GRACE_SECONDS = 30 * 24 * 3600
# The longest a key may be issued for (a key may also never expire).
MAX_LIFETIME = dt.timedelta(days=5 * 365)


async def issue_key(
    session: AsyncSession,
    *,
    pepper: bytes,
    workspace_id: int,
    created_by_id: int,
    membership_id: int,
    name: str,
    scope: str,
    permissions: dict[str, Any] | None = None,
    project_ids: list[int] | None = None,
    expires_at: dt.datetime | None = None,
    rotated_from_id: int | None = None,
) -> tuple[ApiKey, IssuedKey]:
    """Store a new key's hash and return the row with the key, to be shown exactly once.

    The key acts for ``created_by_id`` through ``membership_id``, their membership of the
    workspace, and works only as long as that membership exists."""
    issued = generate_key()
    api_key = ApiKey(
        public_id=issued.public_id,
        workspace_id=workspace_id,
        created_by_id=created_by_id,
        membership_id=membership_id,
        name=name,
        key_hash=hash_key(pepper, issued.key),
        last_four=issued.last_four,
        scope=scope,
        permissions=permissions,
        project_ids=project_ids,
        expires_at=expires_at,
        rotated_from_id=rotated_from_id,
    )
    session.add(api_key)
    await session.flush()
    return api_key, issued


def key_status(key: ApiKey, now: dt.datetime) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _audit(
    session: AsyncSession, actor: Actor, action: Action, key: ApiKey, details: dict[str, Any]
) -> None:
    record(
        session,
        workspace_id=key.workspace_id,
        action=action,
        actor=actor,
        target=Target("api_key", key.id, key.name),
        details={"prefix": display_prefix(key.public_id), **details},
    )


def revoke_key(session: AsyncSession, key: ApiKey, *, actor: Actor) -> bool:
    """Revoke the key from its next request on, and audit it. Revoking twice is harmless:
    returns whether this call revoked it."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    _audit(session, actor, "key.revoked", key, {})
    return True


async def rotate_key(
    session: AsyncSession, old: ApiKey, *, pepper: bytes, grace_seconds: int, actor: Actor
) -> tuple[ApiKey, IssuedKey]:
    """Issue a key with the old one's name, scope and creator; the old one expires after
    ``grace_seconds`` (0 = now, at most ``MAX_GRACE_SECONDS``). If the old key had an expiry,
    the new one gets the same lifetime from now (at most ``MAX_LIFETIME``). A revoked,
    expired or already rotated key is not rotated (409), nor a custom key off the Business
    plan (403 ``plan_required``)."""
    now = utcnow()
    status = key_status(old, now)
    if status != "active" or old.membership_id is None:
        raise Conflict(f"Key {old.id} is {status}: generate a new key instead.")
    successor = await session.scalar(select(ApiKey.id).where(ApiKey.rotated_from_id == old.id))
    if successor is not None:
        # Concurrent rotations meet the unique rotated_from_id instead (409 too).
        raise Conflict(f"Key {old.id} was already rotated: its successor is key {successor}.")
    plan = await session.scalar(select(Workspace.plan).where(Workspace.id == old.workspace_id))
    if old.scope == "custom" and plan != "business":
        raise Forbidden(
            "Custom-scope keys work on the Business plan only: this key cannot be rotated "
            "until the workspace is on Business again. Generate a full or read-only key.",
            code="plan_required",
        )
    lifetime = (
        min(old.expires_at - old.created_at, MAX_LIFETIME) if old.expires_at is not None else None
    )
    key, issued = await issue_key(
        session,
        pepper=pepper,
        workspace_id=old.workspace_id,
        created_by_id=old.created_by_id,
        membership_id=old.membership_id,
        name=old.name,
        scope=old.scope,
        permissions=old.permissions,
        project_ids=old.project_ids,
        expires_at=now + lifetime if lifetime is not None else None,
        rotated_from_id=old.id,
    )
    grace_end = now + dt.timedelta(seconds=grace_seconds)
    if old.expires_at is None or old.expires_at > grace_end:
        old.expires_at = grace_end
    successor_details = {
        "new_key_id": key.id,
        "new_prefix": display_prefix(key.public_id),
        "old_key_expires_at": old.expires_at.isoformat(),
    }
    _audit(session, actor, "key.rotated", old, successor_details)
    return key, issued
