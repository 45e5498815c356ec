"""Recording audit events, always in the caller's transaction: the event commits (or rolls
back) with the change it describes.

Only what is listed here goes in: ids, emails, names, roles, key prefixes, a reason. Never a
key, a password or the pepper.
"""

import json
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request

from craftdesk.db import Transaction, utcnow

Action = Literal[
    "key.created",
    "key.renamed",
    "key.updated",
    "key.rotated",
    "key.revoked",
    "key.leaked",
    "member.added",
    "member.role_changed",
    "member.removed",
    "session.signed_in",
    "session.sign_in_failed",
]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a signed-in ``user``, an ``api_key`` (with its creator), the ``cli``, an
    ``anonymous`` client (a failed sign-in), or GitHub's ``secret_scanning`` (a signed alert
    that a key was found in public), and from which address."""

    type: Literal["user", "api_key", "cli", "anonymous", "secret_scanning"]
    user_id: int | None = None
    email: str | None = None
    key_id: int | None = None
    ip: str | None = None

    @classmethod
    def user(cls, request: Request, user_id: int, email: str) -> "Actor":
        return cls("user", user_id=user_id, email=email, ip=client_ip(request))

    @classmethod
    def api_key(cls, request: Request, key_id: int, user_id: int, email: str | None) -> "Actor":
        return cls("api_key", user_id=user_id, email=email, key_id=key_id, ip=client_ip(request))

    @classmethod
    def anonymous(cls, request: Request) -> "Actor":
        return cls("anonymous", ip=client_ip(request))

    @classmethod
    def secret_scanning(cls, request: Request) -> "Actor":
        return cls("secret_scanning", ip=client_ip(request))


CLI = Actor("cli")


@dataclass(frozen=True, slots=True)
class Target:
    """What was acted on: an ``api_key`` (labelled with its name), a ``member`` or a sign-in
    ``account`` (labelled with the email)."""

    type: Literal["api_key", "member", "account"]
    id: int | None
    label: str | None


def client_ip(request: Request) -> str | None:
    """The client's address (``craftdesk.clients``: behind a trusted proxy, the one it
    forwarded)."""
    address: str | None = request.scope["state"]["client_ip"]
    return address


async def record(
    tx: Transaction,
    *,
    workspace_id: int | None,
    action: Action,
    actor: Actor,
    target: Target,
    details: dict[str, Any] | None = None,
) -> None:
    await tx.execute(
        """INSERT INTO audit_events (workspace_id, occurred_at, action, actor_type,
               actor_user_id, actor_email, actor_key_id, target_type, target_id, target_label,
               details, client_ip)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        workspace_id,
        utcnow(),
        action,
        actor.type,
        actor.user_id,
        actor.email,
        actor.key_id,
        target.type,
        target.id,
        target.label,
        None if details is None else json.dumps(details),
        actor.ip,
    )
