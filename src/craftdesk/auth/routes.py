import datetime as dt
import json

from fastapi import APIRouter, Response
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


@router.get(
    "/key",
    summary="The calling key, its effective permissions and the quota",
    response_model=CallingKey,
)
async def calling_key(principal: Authenticated) -> Response:
    """Answers from what authentication already loaded: no further database query.

    Every integration may call this on every request, so the body is written directly
    (the same JSON ``CallingKey`` describes) instead of through a second validation.
    """
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
        "expires_at": _iso(principal.expires_at),
        "quota": {
            "limit": quota.limit,
            "used": quota.used,
            "remaining": quota.remaining,
            "period_start": _iso(quota.period.start),
            "period_end": _iso(quota.period.end),
        },
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _iso(instant: dt.datetime | None) -> str | None:
    """As pydantic writes a UTC datetime: ISO 8601 with ``Z``."""
    return None if instant is None else instant.isoformat().replace("+00:00", "Z")
