import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel

from craftdesk.auth.bearer import Authenticated
from craftdesk.auth.tokens import display_prefix
from craftdesk.errors import KEY_ROUTE_ERRORS

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=KEY_ROUTE_ERRORS)


class WorkspaceRef(BaseModel):
    slug: str
    name: str
    plan: str


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
    scope: str
    permissions: dict[str, str]
    project_ids: list[int] | None
    role: str
    workspace: WorkspaceRef
    expires_at: dt.datetime | None
    quota: QuotaOut


@router.get("/key", summary="The calling key, its effective permissions and the quota")
async def calling_key(principal: Authenticated) -> CallingKey:
    """Answers from what authentication already loaded: no further database query."""
    return CallingKey(
        id=principal.key_id,
        name=principal.key_name,
        prefix=display_prefix(principal.public_id),
        scope=principal.scope,
        permissions=principal.permissions,
        project_ids=principal.project_ids,
        role=principal.role,
        workspace=WorkspaceRef(
            slug=principal.workspace_slug, name=principal.workspace_name, plan=principal.plan
        ),
        expires_at=principal.expires_at,
        quota=QuotaOut(**principal.quota.as_json()),
    )
