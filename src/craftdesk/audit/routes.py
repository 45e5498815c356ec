"""Reading the audit trail: owners and admins, from a signed-in dashboard session."""

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from craftdesk.audit import queries
from craftdesk.auth.sessions import CurrentUser
from craftdesk.db import Db, Row
from craftdesk.errors import SESSION_ROUTE_ERRORS, Forbidden
from craftdesk.pagination import Page, Pagination, page
from craftdesk.routing import Route
from craftdesk.schemas import respond

router = APIRouter(
    prefix="/v1/audit-events", tags=["audit"], responses=SESSION_ROUTE_ERRORS, route_class=Route
)


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


def _event_out(event: Row) -> dict[str, Any]:
    details = event["details"]
    return {
        "id": event["id"],
        "occurred_at": event["occurred_at"],
        "action": event["action"],
        "actor": {
            "type": event["actor_type"],
            "user_id": event["actor_user_id"],
            "email": event["actor_email"],
            "key_id": event["actor_key_id"],
        },
        "target": {
            "type": event["target_type"],
            "id": event["target_id"],
            "label": event["target_label"],
        },
        "details": None if details is None else json.loads(details),
        "client_ip": event["client_ip"],
    }


@router.get(
    "",
    summary="The workspace's audit trail, newest first (owners and admins)",
    response_model=Page[AuditEventOut],
)
async def list_audit_events(user: CurrentUser, db: Db, params: Pagination) -> Response:
    if not user.manages_workspace:
        raise Forbidden(
            f"Only workspace owners and admins read the audit trail; you are a {user.role}. "
            "Ask an owner or admin.",
            code="insufficient_role",
        )
    rows = await queries.list_events(db, user.workspace_id, params.up_to, params.fetch)
    return respond(page(rows, params, _event_out))
