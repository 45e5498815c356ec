import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from craftdesk.audit.service import Actor
from craftdesk.auth.bearer import KeyRoute, require_permission
from craftdesk.auth.principal import Principal
from craftdesk.db import Db, Queries
from craftdesk.errors import KEY_ROUTE_ERRORS, Forbidden, NotFound
from craftdesk.members import queries
from craftdesk.members.service import change_role, remove
from craftdesk.pagination import Page, Pagination, page
from craftdesk.schemas import Body, Id, respond
from craftdesk.workspaces.queries import MembershipRow, membership

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


def _member_out(member: MembershipRow) -> dict[str, object]:
    return {
        "id": member.id,
        "user_id": member.user_id,
        "email": member.email,
        "role": member.role,
        "created_at": member.created_at,
    }


async def _member(db: Queries, principal: Principal, member_id: int) -> MembershipRow:
    found = await membership(db, principal.workspace_id, member_id)
    if found is None:
        raise NotFound(f"No member {member_id} in this workspace.")
    return found


def _require_owner_for_owners(principal: Principal, *roles: str) -> None:
    if "owner" in roles and principal.role != "owner":
        raise Forbidden(
            "Only a workspace owner can change, grant or remove the owner role.",
            code="insufficient_role",
        )


async def _actor(db: Queries, principal: Principal, request: Request) -> Actor:
    email = await db.fetchval("SELECT email FROM users WHERE id = $1", principal.user_id)
    return Actor.api_key(request, principal.key_id, principal.user_id, email)


@router.get("", summary="List team members", response_model=Page[MemberOut])
async def list_members(
    db: Db,
    principal: Annotated[Principal, require_permission("members", "read")],
    params: Pagination,
) -> Response:
    rows = await queries.list_members(db, principal.workspace_id, params.after, params.fetch)
    return respond(page(rows, params))


@router.get("/{member_id}", summary="Get a team member", response_model=MemberOut)
async def get_member(
    member_id: Id,
    db: Db,
    principal: Annotated[Principal, require_permission("members", "read")],
) -> Response:
    return respond(_member_out(await _member(db, principal, member_id)))


@router.patch("/{member_id}", summary="Change a member's role", response_model=MemberOut)
async def update_member(
    member_id: Id,
    body: MemberUpdate,
    db: Db,
    request: Request,
    principal: Annotated[Principal, require_permission("members", "write")],
) -> Response:
    async with db.transaction() as tx:
        member = await _member(tx, principal, member_id)
        _require_owner_for_owners(principal, member.role, body.role)
        member = await change_role(
            tx, member, body.role, actor=await _actor(tx, principal, request)
        )
    return respond(_member_out(member))


@router.delete("/{member_id}", status_code=204, summary="Remove a member and revoke their keys")
async def delete_member(
    member_id: Id,
    db: Db,
    request: Request,
    principal: Annotated[Principal, require_permission("members", "delete")],
) -> Response:
    async with db.transaction() as tx:
        member = await _member(tx, principal, member_id)
        _require_owner_for_owners(principal, member.role)
        await remove(tx, member, actor=await _actor(tx, principal, request))
    return Response(status_code=204)
