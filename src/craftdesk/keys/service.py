"""Issuing keys: shared by the dashboard routes, rotation and the CLI."""

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.auth.tokens import IssuedKey, generate_key, hash_key
from craftdesk.keys.models import ApiKey


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
