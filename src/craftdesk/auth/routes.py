import datetime as dt

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from craftdesk.auth.bearer import API_KEY_SECURITY, KeyRoute, admitted
from craftdesk.auth.permissions import ResourceAccess, Role, Scope
from craftdesk.auth.tokens import display_prefix
from craftdesk.config import Plan
from craftdesk.errors import KEY_ROUTE_ERRORS
from craftdesk.schemas import respond

router = APIRouter(
    prefix="/v1/auth", tags=["auth"], responses=KEY_ROUTE_ERRORS, route_class=KeyRoute
)


class WorkspaceRef(BaseModel):
    slug: str
    name: str
    plan: Plan


class QuotaOut(BaseModel):
    limit: int
    used: int
    remaining: int
    period_start: dt.datetime
    period_end: dt.datetime


class CallingKey(BaseModel):
    id: int
    name: str
    prefix: str
    scope: Scope
    permissions: ResourceAccess = Field(
        description="What the key may do now: its scope, narrowed by its creator's role."
    )
    project_ids: list[int] | None
    role: Role = Field(description="The key creator's role in the workspace, now.")
    workspace: WorkspaceRef
    expires_at: dt.datetime | None
    quota: QuotaOut


@router.get(
    "/key",
    summary="The calling key, its effective permissions and the quota",
    description="Which key this is, what it may do now and its workspace's quota. Any key "
    "may call it; like every request, it counts against the quota.",
    response_model=CallingKey,
    openapi_extra=API_KEY_SECURITY,
)
async def calling_key(request: Request) -> Response:
    """Answers from what authentication already loaded: no further database query.

    Any key may call this, so it declares no permission. Integrations may call it on every
    request, so the body is written directly (the JSON ``CallingKey`` describes, as pydantic
    writes it) instead of through a second validation.
    """
    principal = admitted(request)
    quota = principal.quota
    body = {
        "id": principal.key_id,
        "name": principal.key_name,
        "prefix": display_prefix(principal.public_id),
        "scope": principal.scope,
        "permissions": principal.permissions,
        "project_ids": principal.project_ids,
        "role": principal.role,
        "workspace": {
            "slug": principal.workspace_slug,
            "name": principal.workspace_name,
            "plan": principal.plan,
        },
        "expires_at": principal.expires_at,
        "quota": {
            "limit": quota.limit,
            "used": quota.used,
            "remaining": quota.remaining,
            "period_start": quota.period.start,
            "period_end": quota.period.end,
        },
    }
    return respond(body)
