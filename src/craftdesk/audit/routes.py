"""Reading the audit trail: owners and admins, from a signed-in dashboard session."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import select

from craftdesk.audit.models import AuditEvent
from craftdesk.auth.sessions import CurrentUser
from craftdesk.db import Session
from craftdesk.errors import SESSION_ROUTE_ERRORS, Forbidden
from craftdesk.pagination import Page, PageParams, page_params, paginate

router = APIRouter(prefix="/v1/audit-events", tags=["audit"], responses=SESSION_ROUTE_ERRORS)


class ActorOut(BaseModel):
    type: str
    user_id: int | None
    email: str | None
    key_id: int | None


class TargetOut(BaseModel):
    type: str
    id: int | None
    label: str | None


class AuditEventOut(BaseModel):
    id: int
    occurred_at: dt.datetime
    action: str
    actor: ActorOut
    target: TargetOut
    details: dict[str, Any] | None
    client_ip: str | None


def _event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        action=event.action,
        actor=ActorOut(
            type=event.actor_type,
            user_id=event.actor_user_id,
            email=event.actor_email,
            key_id=event.actor_key_id,
        ),
        target=TargetOut(type=event.target_type, id=event.target_id, label=event.target_label),
        details=event.details,
        client_ip=event.client_ip,
    )


@router.get("", summary="The workspace's audit trail, newest first (owners and admins)")
async def list_audit_events(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[AuditEventOut]:
    if not user.manages_workspace:
        raise Forbidden(
            f"Only workspace owners and admins read the audit trail; you are a {user.role}. "
            "Ask an owner or admin.",
            code="insufficient_role",
        )
    stmt = select(AuditEvent).where(AuditEvent.workspace_id == user.workspace_id)
    rows, cursor = await paginate(session, stmt, AuditEvent.id, page, newest_first=True)
    return Page(data=[_event_out(row[0]) for row in rows], next_cursor=cursor)
