"""Issuing, revoking and rotating keys: shared by the dashboard routes and the CLI."""

import datetime as dt
from typing import Any, Literal

from craftdesk.audit.service import Action, Actor, Target, record
from craftdesk.auth.tokens import IssuedKey, display_prefix, generate_key, hash_key
from craftdesk.db import Transaction, utcnow
from craftdesk.errors import Conflict, Forbidden
from craftdesk.keys import queries
from craftdesk.keys.queries import ApiKeyRow

KeyStatus = Literal["active", "expired", "revoked"]
MAX_GRACE_SECONDS = 30 * 24 * 3600
# The longest a key may be issued for (a key may also never expire).
MAX_LIFETIME = dt.timedelta(days=5 * 365)


async def issue_key(
    tx: Transaction,
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
    allowed_ips: list[str] | None = None,
    rate_limit: tuple[int, int] | None = None,
) -> tuple[ApiKeyRow, IssuedKey]:
    """Store a new key's hash and return the row with the key, to be shown exactly once.

    The key acts for ``created_by_id`` through ``membership_id``, their membership of the
    workspace, and works only as long as that membership exists."""
    issued = generate_key()
    api_key = await queries.insert_key(
        tx,
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
        created_at=utcnow(),
        rotated_from_id=rotated_from_id,
        allowed_ips=allowed_ips,
        rate_limit=rate_limit,
    )
    return api_key, issued


def key_status(key: ApiKeyRow, now: dt.datetime) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


async def _audit(
    tx: Transaction, actor: Actor, action: Action, key: ApiKeyRow, details: dict[str, Any]
) -> None:
    await record(
        tx,
        workspace_id=key.workspace_id,
        action=action,
        actor=actor,
        target=Target("api_key", key.id, key.name),
        details={"prefix": display_prefix(key.public_id), **details},
    )


RevokedReason = Literal["revoked", "member_removed", "rotated", "leaked"]


async def revoke_key(
    tx: Transaction,
    key: ApiKeyRow,
    *,
    actor: Actor,
    reason: RevokedReason = "revoked",
    details: dict[str, Any] | None = None,
) -> bool:
    """Revoke the key from its next request on, and audit it (``key.revoked``, or
    ``key.leaked`` for a key found in public, whose ``details["url"]`` is also kept on the
    key for the dashboard). Revoking twice is harmless: returns whether this call revoked
    it."""
    leaked_url = ((details or {}).get("url") or None) if reason == "leaked" else None
    if not await queries.set_revoked(tx, key.id, utcnow(), reason, leaked_url):
        return False
    action: Action = "key.leaked" if reason == "leaked" else "key.revoked"
    await _audit(tx, actor, action, key, {"reason": reason, **(details or {})})
    return True


async def rotate_key(
    tx: Transaction,
    old: ApiKeyRow,
    *,
    plan: str,
    pepper: bytes,
    grace_seconds: int,
    actor: Actor,
) -> tuple[ApiKeyRow, IssuedKey]:
    """Issue a key with the old one's name, scope and creator; the old one expires after
    ``grace_seconds`` (0 = now, at most ``MAX_GRACE_SECONDS``). If the old key had an expiry,
    the new one gets the same lifetime from now (at most ``MAX_LIFETIME``). A revoked,
    expired or already rotated key is not rotated (409), nor a custom key off the Business
    plan (403 ``plan_required``). ``old`` is read in ``tx`` (``queries.lock_key``), and ``plan``
    is its workspace's."""
    now = utcnow()
    status = key_status(old, now)
    if status != "active" or old.membership_id is None:
        raise Conflict(f"Key {old.id} is {status}: generate a new key instead.")
    successor = await queries.successor_id(tx, old.id)
    if successor is not None:
        # Concurrent rotations meet the unique rotated_from_id instead (409 too).
        raise Conflict(f"Key {old.id} was already rotated: its successor is key {successor}.")
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
        tx,
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
        allowed_ips=old.allowed_ips,
        rate_limit=(old.rate_limit_requests, old.rate_limit_seconds)
        if old.rate_limit_requests is not None and old.rate_limit_seconds is not None
        else None,
    )
    grace_end = now + dt.timedelta(seconds=grace_seconds)
    old_expires_at = old.expires_at
    if old_expires_at is None or old_expires_at > grace_end:
        old_expires_at = grace_end
        await queries.set_expiry(tx, old.id, old_expires_at)
    successor_details = {
        "new_key_id": key.id,
        "new_prefix": display_prefix(key.public_id),
        "old_key_expires_at": old_expires_at.isoformat(),
    }
    await _audit(tx, actor, "key.rotated", old, successor_details)
    return key, issued
