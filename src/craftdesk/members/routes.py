import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import Actor
from craftdesk.auth.bearer import KeyRoute, require_permission
from craftdesk.auth.principal import Principal
from craftdesk.db import Session
from craftdesk.errors import KEY_ROUTE_ERRORS, Forbidden, NotFound
from craftdesk.members.service import change_role, remove
from craftdesk.pagination import Page, PageParams, page_params, paginate
from craftdesk.schemas import Body, Id
from craftdesk.workspaces.models import Membership, User

router = APIRouter(
    prefix="/v1/members", tags=["members"], responses=KEY_ROUTE_ERRORS, route_class=KeyRoute
)

Role = Literal["owner", "admin", "member"]


class MemberOut(BaseModel):
    id: int
    user_id: int
    email: str
    role: Role
    created_at: dt.datetime


class MemberUpdate(Body):
    role: Role


def _member_out(membership: Membership, email: str) -> MemberOut:
    return MemberOut(
        id=membership.id,
        user_id=membership.user_id,
        email=email,
        role=membership.role,
        created_at=membership.created_at,
    )


async def _member(
    session: AsyncSession, principal: Principal, member_id: int
) -> tuple[Membership, str]:
    row = (
        await session.execute(
            select(Membership, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id == member_id, Membership.workspace_id == principal.workspace_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No member {member_id} in this workspace.")
    return row[0], row[1]


def _require_owner_for_owners(principal: Principal, *roles: str) -> None:
    if "owner" in roles and principal.role != "owner":
        raise Forbidden(
            "Only a workspace owner can change, grant or remove the owner role.",
            code="insufficient_role",
        )


async def _actor(session: AsyncSession, principal: Principal, request: Request) -> Actor:
    email = await session.scalar(select(User.email).where(User.id == principal.user_id))
    return Actor.api_key(request, principal.key_id, principal.user_id, email)


@router.get("", summary="List team members")
async def list_members(
    session: Session,
    principal: Annotated[Principal, require_permission("members", "read")],
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[MemberOut]:
    stmt = (
        select(Membership, User.email)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == principal.workspace_id)
    )
    rows, cursor = await paginate(session, stmt, Membership.id, page)
    return Page(data=[_member_out(m, email) for m, email in rows], next_cursor=cursor)


@router.get("/{member_id}", summary="Get a team member")
async def get_member(
    member_id: Id,
    session: Session,
    principal: Annotated[Principal, require_permission("members", "read")],
) -> MemberOut:
    return _member_out(*await _member(session, principal, member_id))


@router.patch("/{member_id}", summary="Change a member's role")
async def update_member(
    member_id: Id,
    body: MemberUpdate,
    session: Session,
    request: Request,
    principal: Annotated[Principal, require_permission("members", "write")],
) -> MemberOut:
    membership, email = await _member(session, principal, member_id)
    _require_owner_for_owners(principal, membership.role, body.role)
    actor = await _actor(session, principal, request)
    if await change_role(session, membership, email, body.role, actor=actor):
        await session.commit()
    return _member_out(membership, email)


@router.delete("/{member_id}", status_code=204, summary="Remove a member and revoke their keys")
async def delete_member(
    member_id: Id,
    session: Session,
    request: Request,
    principal: Annotated[Principal, require_permission("members", "delete")],
) -> Response:
    membership, email = await _member(session, principal, member_id)
    _require_owner_for_owners(principal, membership.role)
    await remove(session, membership, email, actor=await _actor(session, principal, request))
    await session.commit()
    return Response(status_code=204)
