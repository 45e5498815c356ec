import datetime as dt

from fastapi import APIRouter, Request
from pydantic import BaseModel

from craftdesk.auth.sessions import CurrentUser
from craftdesk.config import Plan
from craftdesk.db import Db
from craftdesk.errors import SESSION_ROUTE_ERRORS
from craftdesk.metering.usage import workspace_quota
from craftdesk.routing import Route

router = APIRouter(
    prefix="/v1/usage", tags=["usage"], responses=SESSION_ROUTE_ERRORS, route_class=Route
)


class WorkspaceUsageOut(BaseModel):
    plan: Plan
    quota: int
    used: int
    remaining: int
    period_start: dt.datetime
    period_end: dt.datetime


@router.get("", summary="The workspace's plan, quota and use this billing period")
async def get_usage(user: CurrentUser, db: Db, request: Request) -> WorkspaceUsageOut:
    quota = await workspace_quota(
        db,
        request.app.state.settings,
        workspace_id=user.workspace_id,
        plan=user.plan,
        quota_override=user.quota_override,
        billing_anchor=user.billing_anchor,
    )
    return WorkspaceUsageOut(
        plan=user.plan,
        quota=quota.limit,
        used=quota.used,
        remaining=quota.remaining,
        period_start=quota.period.start,
        period_end=quota.period.end,
    )
