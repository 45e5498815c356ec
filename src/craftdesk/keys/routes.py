"""Key management for the dashboard (signed-in session): Settings → Integrations → API Keys."""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import Action, Actor, Target, record
from craftdesk.auth.permissions import RESOURCES, ResourceAccess, Scope, scope_access
from craftdesk.auth.sessions import CurrentUser, SignedIn
from craftdesk.auth.tokens import display_prefix
from craftdesk.db import Session, utcnow
from craftdesk.errors import (
    SESSION_ROUTE_ERRORS,
    Forbidden,
    NotFound,
    Unprocessable,
)
from craftdesk.keys import service as key_service
from craftdesk.keys.models import ApiKey
from craftdesk.keys.service import MAX_GRACE_SECONDS, MAX_LIFETIME, issue_key, key_status
from craftdesk.metering.models import KeyUsage
from craftdesk.metering.periods import BillingPeriod
from craftdesk.metering.usage import key_daily_series
from craftdesk.openapi import no_store
from craftdesk.pagination import Page, PageParams, page_params, paginate
from craftdesk.projects.models import Project
from craftdesk.schemas import Body, Id, Name
from craftdesk.workspaces.models import User, Workspace

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"], responses=SESSION_ROUTE_ERRORS)

Access = Literal["none", "read", "write"]


class CustomPermissions(Body):
    projects: Access = "none"
    tasks: Access = "none"
    members: Access = "none"


class KeyCreate(Body):
    name: Name = Field(examples=["CI/CD Pipeline"])
    scope: Literal["full", "read_only", "custom"] = "full"
    permissions: CustomPermissions | None = None
    project_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, min_length=1, max_length=100
    )
    expires_at: dt.datetime | None = Field(
        None, description="When the key stops working: in the future, at most 5 years away."
    )

    @field_validator("expires_at")
    @classmethod
    def _aware_future_and_bounded(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        now = utcnow()
        if value <= now:
            raise ValueError("must be in the future")
        if value > now + MAX_LIFETIME:
            raise ValueError("must be at most 5 years from now (or left out: no expiry)")
        return value.astimezone(dt.UTC)


class KeyRename(Body):
    name: Name


class KeyRotate(Body):
    expire_old_after_seconds: int = Field(0, ge=0, le=MAX_GRACE_SECONDS)


class Creator(BaseModel):
    id: int
    email: str


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The key's public part: show it with `last_four`.")
    last_four: str
    scope: Scope
    permissions: ResourceAccess
    project_ids: list[int] | None
    status: Literal["active", "expired", "revoked"]
    created_at: dt.datetime
    created_by: Creator
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rotated_from_id: int | None
    requests_this_period: int


class KeyCreated(KeyOut):
    key: str = Field(description="The full key. Shown this once: store it now.")


class DayUsage(BaseModel):
    date: dt.date
    requests: int


class KeyUsageOut(BaseModel):
    key_id: int
    period_start: dt.datetime
    period_end: dt.datetime
    requests: int
    days: list[DayUsage]


def _key_out(key: ApiKey, creator_email: str, requests: int) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        prefix=display_prefix(key.public_id),
        last_four=key.last_four,
        scope=key.scope,
        permissions=scope_access(key.scope, key.permissions),
        project_ids=key.project_ids,
        status=key_status(key, utcnow()),
        created_at=key.created_at,
        created_by=Creator(id=key.created_by_id, email=creator_email),
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        rotated_from_id=key.rotated_from_id,
        requests_this_period=requests,
    )


def _period(user: SignedIn) -> BillingPeriod:
    return BillingPeriod.containing(user.billing_anchor, utcnow())


def _workspace_keys_query(workspace_id: int, period: BillingPeriod):  # type: ignore[no-untyped-def]
    """The workspace's keys with creator email and the period's count."""
    return (
        select(ApiKey, User.email, KeyUsage.requests)
        .join(User, User.id == ApiKey.created_by_id)
        .outerjoin(
            KeyUsage,
            and_(KeyUsage.api_key_id == ApiKey.id, KeyUsage.period_start == period.start),
        )
        .where(ApiKey.workspace_id == workspace_id)
    )


def _keys_query(user: SignedIn):  # type: ignore[no-untyped-def]
    """Keys visible to the user with creator email and this period's count."""
    stmt = _workspace_keys_query(user.workspace_id, _period(user))
    if not user.manages_workspace:
        stmt = stmt.where(ApiKey.created_by_id == user.user_id)
    return stmt


async def workspace_keys(session: AsyncSession, workspace: Workspace) -> list[KeyOut]:
    """Every key of the workspace, newest first, as ``GET /v1/api-keys`` shows them to an
    owner: for the command line's ``key list``."""
    period = BillingPeriod.containing(workspace.billing_anchor, utcnow())
    rows = await session.execute(
        _workspace_keys_query(workspace.id, period).order_by(ApiKey.id.desc())
    )
    return [_key_out(key, email, requests or 0) for key, email, requests in rows]


async def _visible_key(session: AsyncSession, user: SignedIn, key_id: int) -> KeyOut:
    row = (await session.execute(_keys_query(user).where(ApiKey.id == key_id))).first()
    if row is None:
        raise NotFound(f"No API key {key_id} that you can see in this workspace.")
    key, email, requests = row
    return _key_out(key, email, requests or 0)


async def _check_project_ids(session: AsyncSession, workspace_id: int, ids: list[int]) -> None:
    found = set(
        await session.scalars(
            select(Project.id).where(Project.workspace_id == workspace_id, Project.id.in_(ids))
        )
    )
    missing = sorted(set(ids) - found)
    if missing:
        raise Unprocessable(f"project_ids: no project {missing} in this workspace.")


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


def _audit(
    session: AsyncSession,
    request: Request,
    user: SignedIn,
    action: Action,
    key: ApiKey,
    details: dict[str, Any],
) -> None:
    record(
        session,
        workspace_id=user.workspace_id,
        action=action,
        actor=Actor.user(request, user.user_id, user.email),
        target=Target("api_key", key.id, key.name),
        details={"prefix": display_prefix(key.public_id), **details},
    )


@router.post(
    "", status_code=201, summary="Generate a new key (shown once)", responses=no_store(201)
)
async def create_key(
    body: KeyCreate, user: CurrentUser, session: Session, request: Request, response: Response
) -> KeyCreated:
    if body.scope == "custom":
        if user.plan != "business":
            raise Forbidden(
                "Custom scope is available on the Business plan only. Upgrade the workspace, "
                "or choose Full Access or Read-Only.",
                code="plan_required",
            )
        permissions = body.permissions or CustomPermissions()
        if all(getattr(permissions, r) == "none" for r in RESOURCES):
            raise Unprocessable("permissions: a custom key must grant read or write on something.")
        if body.project_ids:
            await _check_project_ids(session, user.workspace_id, body.project_ids)
    elif body.permissions is not None or body.project_ids is not None:
        raise Unprocessable("permissions and project_ids apply to the custom scope only.")
    key, issued = await issue_key(
        session,
        pepper=request.app.state.settings.pepper,
        workspace_id=user.workspace_id,
        created_by_id=user.user_id,
        membership_id=user.membership_id,
        name=body.name,
        scope=body.scope,
        permissions=body.permissions.model_dump()
        if body.scope == "custom" and body.permissions
        else None,
        project_ids=sorted(set(body.project_ids)) if body.project_ids else None,
        expires_at=body.expires_at,
    )
    _audit(session, request, user, "key.created", key, {"scope": key.scope})
    await session.commit()
    _no_store(response)
    return KeyCreated(**_key_out(key, user.email, 0).model_dump(), key=issued.key)


@router.get("", summary="List API keys")
async def list_keys(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[KeyOut]:
    rows, cursor = await paginate(session, _keys_query(user), ApiKey.id, page, newest_first=True)
    return Page(
        data=[_key_out(key, email, requests or 0) for key, email, requests in rows],
        next_cursor=cursor,
    )


@router.get("/{key_id}", summary="Get an API key")
async def get_key(key_id: Id, user: CurrentUser, session: Session) -> KeyOut:
    return await _visible_key(session, user, key_id)


@router.patch("/{key_id}", summary="Rename an API key")
async def rename_key(
    key_id: Id, body: KeyRename, user: CurrentUser, session: Session, request: Request
) -> KeyOut:
    await _visible_key(session, user, key_id)
    key = await session.get_one(ApiKey, key_id)
    if key.name != body.name:
        _audit(session, request, user, "key.renamed", key, {"from": key.name, "to": body.name})
        key.name = body.name
        await session.commit()
    return await _visible_key(session, user, key_id)


@router.get("/{key_id}/usage", summary="A key's requests this billing period, per day")
async def key_usage(key_id: Id, user: CurrentUser, session: Session) -> KeyUsageOut:
    await _visible_key(session, user, key_id)
    period = _period(user)
    total, days = await key_daily_series(session, key_id, period)
    return KeyUsageOut(
        key_id=key_id,
        period_start=period.start,
        period_end=period.end,
        requests=total,
        days=[DayUsage(date=day, requests=n) for day, n in days],
    )


@router.delete("/{key_id}", summary="Revoke an API key (at once, everywhere)")
async def revoke_key(key_id: Id, user: CurrentUser, session: Session, request: Request) -> KeyOut:
    await _visible_key(session, user, key_id)
    key = await session.get_one(ApiKey, key_id)
    actor = Actor.user(request, user.user_id, user.email)
    if key_service.revoke_key(session, key, actor=actor):
        await session.commit()
    return await _visible_key(session, user, key_id)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    summary="Rotate: a new key, the old one expires",
    responses=no_store(201),
)
async def rotate_key(
    key_id: Id,
    body: KeyRotate,
    user: CurrentUser,
    session: Session,
    request: Request,
    response: Response,
) -> KeyCreated:
    """Only the key's creator rotates it: the new secret acts as its creator, so anyone else
    would be handed a key that acts as another person. Owners and admins may revoke it."""
    old_out = await _visible_key(session, user, key_id)
    old = await session.get_one(ApiKey, key_id)
    if old.created_by_id != user.user_id:
        raise Forbidden(
            f"Only the key's creator ({old_out.created_by.email}) can rotate it, because the "
            "new key acts as them. Revoke it instead, or ask them to rotate it.",
            code="not_key_creator",
        )
    key, issued = await key_service.rotate_key(
        session,
        old,
        pepper=request.app.state.settings.pepper,
        grace_seconds=body.expire_old_after_seconds,
        actor=Actor.user(request, user.user_id, user.email),
    )
    await session.commit()
    _no_store(response)
    return KeyCreated(**_key_out(key, user.email, 0).model_dump(), key=issued.key)
