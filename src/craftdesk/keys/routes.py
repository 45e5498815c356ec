"""Key management for the dashboard (signed-in session): Settings → Integrations → API Keys."""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field, field_validator

from craftdesk.activity import queries as activity
from craftdesk.activity.alerts import alerts_for, windows
from craftdesk.audit.service import Action, Actor, Target, record
from craftdesk.auth.permissions import RESOURCES, ResourceAccess, Scope, scope_access
from craftdesk.auth.sessions import CurrentUser, SignedIn
from craftdesk.auth.tokens import display_prefix
from craftdesk.clients import parse_network
from craftdesk.db import Db, IntegrityViolation, Queries, Row, Transaction, utcnow
from craftdesk.errors import (
    SESSION_ROUTE_ERRORS,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
)
from craftdesk.keys import queries
from craftdesk.keys import service as key_service
from craftdesk.keys.queries import ApiKeyRow, ListedKey
from craftdesk.keys.service import MAX_GRACE_SECONDS, MAX_LIFETIME, issue_key, key_status
from craftdesk.metering.periods import BillingPeriod
from craftdesk.metering.usage import key_daily_series
from craftdesk.openapi import no_store
from craftdesk.pagination import Page, Pagination, page
from craftdesk.projects.queries import existing_project_ids
from craftdesk.routing import Route
from craftdesk.schemas import MAX_ID, Body, Id, Name, respond
from craftdesk.workspaces.queries import WorkspaceRow

router = APIRouter(
    prefix="/v1/api-keys", tags=["api-keys"], responses=SESSION_ROUTE_ERRORS, route_class=Route
)

Access = Literal["none", "read", "write"]


class CustomPermissions(Body):
    projects: Access = "none"
    tasks: Access = "none"
    members: Access = "none"


class RateLimit(Body):
    requests: int = Field(ge=1, le=1_000_000, description="Requests admitted per window.")
    per_seconds: int = Field(
        ge=1, le=86_400, description="The window, in seconds (fixed windows, aligned on the epoch)."
    )


def _cidrs(value: list[str] | None) -> list[str] | None:
    """Each range parsed and written one way (``10.1.2.3/8`` is ``10.0.0.0/8``), once."""
    if value is None:
        return None
    ranges: list[str] = []
    for text in value:
        try:
            network = str(parse_network(text))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 or IPv6 address or CIDR range") from None
        if network not in ranges:
            ranges.append(network)
    return ranges


AllowedIps = Annotated[
    list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?$")]] | None,
    Field(
        min_length=1,
        max_length=50,
        description="Where the key may be used from: up to 50 IPv4 or IPv6 CIDR ranges (or "
        "addresses). A request from elsewhere gets 403 `ip_not_allowed`. Left out or null: "
        "anywhere.",
        examples=[["203.0.113.0/24", "2001:db8::/32"]],
    ),
    AfterValidator(_cidrs),
]
KeyRateLimit = Annotated[
    RateLimit | None,
    Field(
        description="The key's own rate limit; past it, 429 `rate_limited` (not counted "
        "against the quota). Left out or null: none."
    ),
]


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
    allowed_ips: AllowedIps = None
    rate_limit: KeyRateLimit = None

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


class KeyUpdate(Body):
    """What changes (a field left out stays as it is; null clears the IPs or the limit)."""

    name: Name | None = None
    allowed_ips: AllowedIps = None
    rate_limit: KeyRateLimit = None


class KeyRotate(Body):
    expire_old_after_seconds: int = Field(0, ge=0, le=MAX_GRACE_SECONDS)


class Alert(BaseModel):
    kind: Literal["new_ip", "failing", "revoked_in_use", "unused"] = Field(
        description="`new_ip`: used in the last 24 h from an address not seen with the key in "
        "the 30 days before; `failing`: in the last hour at least 20 requests, over half "
        "401 or 403; `revoked_in_use`: revoked or expired, and tried in the last 24 h; "
        "`unused`: active and unused for 30 days."
    )
    detail: str
    since: dt.datetime


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
    last_used_ip: str | None = Field(
        description="The client address of the key's last request (as coarse as last_used_at)."
    )
    last_used_user_agent: str | None
    expires_at: dt.datetime | None
    allowed_ips: list[str] | None
    rate_limit: RateLimit | None
    revoked_at: dt.datetime | None
    revoked_reason: Literal["revoked", "member_removed", "rotated", "leaked"] | None = Field(
        description="Why the key was revoked: by a person, with its member's removal, "
        "rotated, or found in public (leaked)."
    )
    leaked_url: str | None = Field(
        None,
        description="Where the key was found in public, when GitHub's secret scanning "
        'reported it (`revoked_reason: "leaked"`); null if not said.',
    )
    rotated_from_id: int | None
    requests_this_period: int
    alerts: list[Alert] = Field(
        description="What looks unusual about the key now, computed from its stored activity."
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The full key. Shown this once: store it now.")


class DayUsage(BaseModel):
    date: dt.date
    requests: int = Field(description="Requests counted against the quota.")
    outcomes: dict[str, int] = Field(
        description="Every request of the day that presented the key, by outcome code "
        "(`ok` for 2xx/3xx, else the problem's code, e.g. `key_revoked`, `rate_limited`)."
    )


class KeyRequestOut(BaseModel):
    at: dt.datetime
    method: str
    path: str
    status: int
    code: str = Field(description="`ok` for 2xx/3xx, else the problem's code.")
    ip: str | None
    user_agent: str | None
    request_id: str
    duration_ms: float


class KeyUsageOut(BaseModel):
    key_id: int
    period_start: dt.datetime
    period_end: dt.datetime
    requests: int
    days: list[DayUsage]


def _key_out(
    key: ApiKeyRow,
    creator_email: str,
    requests: int,
    alerts: list[dict[str, Any]],
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``KeyOut`` of a key at ``now``, as JSON-ready data."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": display_prefix(key.public_id),
        "last_four": key.last_four,
        "scope": key.scope,
        "permissions": scope_access(key.scope, key.permissions),
        "project_ids": key.project_ids,
        "status": key_status(key, now),
        "created_at": key.created_at,
        "created_by": {"id": key.created_by_id, "email": creator_email},
        "last_used_at": key.last_used_at,
        "last_used_ip": key.last_used_ip,
        "last_used_user_agent": key.last_used_user_agent,
        "expires_at": key.expires_at,
        "allowed_ips": key.allowed_ips,
        "rate_limit": None
        if key.rate_limit_requests is None
        else {"requests": key.rate_limit_requests, "per_seconds": key.rate_limit_seconds},
        "revoked_at": key.revoked_at,
        "revoked_reason": key.revoked_reason,
        "leaked_url": key.leaked_url,
        "rotated_from_id": key.rotated_from_id,
        "requests_this_period": requests,
        "alerts": alerts,
    }


async def _listed_out(db: Queries, keys: list[ListedKey], now: dt.datetime) -> list[dict[str, Any]]:
    """The ``KeyOut`` of each key, listed at ``now``, with its alerts."""
    alerts = await alerts_for(db, keys, now)
    return [
        _key_out(key, email, requests, alerts[key.id], now) for key, email, requests, _, _ in keys
    ]


def _period(user: SignedIn, now: dt.datetime) -> BillingPeriod:
    return BillingPeriod.containing(user.billing_anchor, now)


async def workspace_keys(db: Queries, workspace: WorkspaceRow) -> list[KeyOut]:
    """Every key of the workspace, newest first, as ``GET /v1/api-keys`` shows them to an
    owner: for the command line's ``key list``."""
    now = utcnow()
    period = BillingPeriod.containing(workspace.billing_anchor, now)
    keys = await queries.list_keys(
        db,
        workspace.id,
        period.start,
        windows(now),
        created_by_id=None,
        up_to=MAX_ID,
        limit=MAX_ID,
    )
    return [KeyOut.model_validate(key) for key in await _listed_out(db, keys, now)]


async def _visible_key(db: Queries, user: SignedIn, key_id: int, now: dt.datetime) -> ListedKey:
    listed = await queries.listed_key(
        db, user.workspace_id, _period(user, now).start, windows(now), key_id
    )
    if listed is None or not (user.manages_workspace or listed.key.created_by_id == user.user_id):
        raise NotFound(f"No API key {key_id} that you can see in this workspace.")
    return listed


async def _check_project_ids(db: Queries, workspace_id: int, ids: list[int]) -> None:
    missing = sorted(set(ids) - await existing_project_ids(db, workspace_id, ids))
    if missing:
        raise Unprocessable(f"project_ids: no project {missing} in this workspace.")


NO_STORE = {"Cache-Control": "no-store"}


async def _audit(
    tx: Transaction,
    request: Request,
    user: SignedIn,
    action: Action,
    key: ApiKeyRow,
    details: dict[str, Any],
) -> None:
    await record(
        tx,
        workspace_id=user.workspace_id,
        action=action,
        actor=Actor.user(request, user.user_id, user.email),
        target=Target("api_key", key.id, key.name),
        details={"prefix": display_prefix(key.public_id), **details},
    )


@router.post(
    "",
    status_code=201,
    summary="Generate a new key (shown once)",
    responses=no_store(201),
    response_model=KeyCreated,
)
async def create_key(body: KeyCreate, user: CurrentUser, db: Db, request: Request) -> Response:
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
            await _check_project_ids(db, user.workspace_id, body.project_ids)
    elif body.permissions is not None or body.project_ids is not None:
        raise Unprocessable("permissions and project_ids apply to the custom scope only.")
    async with db.transaction() as tx:
        key, issued = await issue_key(
            tx,
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
            allowed_ips=body.allowed_ips,
            rate_limit=(body.rate_limit.requests, body.rate_limit.per_seconds)
            if body.rate_limit
            else None,
        )
        await _audit(tx, request, user, "key.created", key, {"scope": key.scope})
    key_out = _key_out(key, user.email, 0, [], utcnow())
    return respond({**key_out, "key": issued.key}, 201, NO_STORE)


@router.get("", summary="List API keys", response_model=Page[KeyOut])
async def list_keys(user: CurrentUser, db: Db, params: Pagination) -> Response:
    now = utcnow()
    keys = await queries.list_keys(
        db,
        user.workspace_id,
        _period(user, now).start,
        windows(now),
        created_by_id=None if user.manages_workspace else user.user_id,
        up_to=params.up_to,
        limit=params.fetch,
    )
    kept = keys[: params.limit]
    next_cursor = str(kept[-1].key.id) if len(keys) > params.limit else None
    return respond({"data": await _listed_out(db, kept, now), "next_cursor": next_cursor})


@router.get("/{key_id}", summary="Get an API key", response_model=KeyOut)
async def get_key(key_id: Id, user: CurrentUser, db: Db) -> Response:
    now = utcnow()
    [key] = await _listed_out(db, [await _visible_key(db, user, key_id, now)], now)
    return respond(key)


@router.patch(
    "/{key_id}",
    summary="Rename a key, set where it may be used from and its rate limit",
    response_model=KeyOut,
)
async def update_key(
    key_id: Id, body: KeyUpdate, user: CurrentUser, db: Db, request: Request
) -> Response:
    given = body.model_fields_set
    now = utcnow()
    async with db.transaction() as tx:
        listed = await _visible_key(tx, user, key_id, now)
        key = listed.key
        if body.name is not None and key.name != body.name:
            await queries.set_name(tx, key.id, body.name)
            await _audit(tx, request, user, "key.renamed", key, {"from": key.name, "to": body.name})
            key = key._replace(name=body.name)
        changes: dict[str, Any] = {}
        if "allowed_ips" in given and body.allowed_ips != key.allowed_ips:
            changes["allowed_ips"] = body.allowed_ips
        rate = (body.rate_limit.requests, body.rate_limit.per_seconds) if body.rate_limit else None
        if "rate_limit" in given and rate != (
            None
            if key.rate_limit_requests is None
            else (key.rate_limit_requests, key.rate_limit_seconds)
        ):
            changes["rate_limit"] = body.rate_limit.model_dump() if body.rate_limit else None
        if changes:
            allowed_ips = changes.get("allowed_ips", key.allowed_ips)
            if "rate_limit" in changes:
                limit, seconds = rate if rate else (None, None)
            else:
                limit, seconds = key.rate_limit_requests, key.rate_limit_seconds
            await queries.set_controls(tx, key.id, allowed_ips, limit, seconds)
            await _audit(tx, request, user, "key.updated", key, changes)
            key = key._replace(
                allowed_ips=allowed_ips, rate_limit_requests=limit, rate_limit_seconds=seconds
            )
    [key_out] = await _listed_out(db, [listed._replace(key=key)], now)
    return respond(key_out)


@router.get(
    "/{key_id}/usage",
    summary="A key's requests this billing period, per day",
    response_model=KeyUsageOut,
)
async def key_usage(key_id: Id, user: CurrentUser, db: Db) -> Response:
    now = utcnow()
    await _visible_key(db, user, key_id, now)
    period = _period(user, now)
    total, days = await key_daily_series(db, key_id, period)
    outcomes: dict[dt.date, dict[str, int]] = {}
    if days:
        for row in await activity.outcomes_by_day(db, key_id, days[0][0], days[-1][0]):
            outcomes.setdefault(row["day"], {})[row["code"]] = row["requests"]
    return respond(
        {
            "key_id": key_id,
            "period_start": period.start,
            "period_end": period.end,
            "requests": total,
            "days": [
                {"date": day, "requests": n, "outcomes": outcomes.get(day, {})} for day, n in days
            ],
        }
    )


@router.get(
    "/{key_id}/requests",
    summary="A key's request log, newest first",
    response_model=Page[KeyRequestOut],
)
async def key_requests(
    key_id: Id,
    user: CurrentUser,
    db: Db,
    params: Pagination,
    status: Annotated[int | None, Query(ge=100, le=599, description="Only this status.")] = None,
    code: Annotated[
        str | None,
        Query(pattern=r"^[a-z_]{1,32}$", description="Only this outcome code, e.g. `ok`."),
    ] = None,
) -> Response:
    """Every request that presented this key, whatever its outcome, visible about a second
    after it was answered and kept ``CRAFTDESK_ACTIVITY_RETENTION_DAYS`` days."""
    await _visible_key(db, user, key_id, utcnow())
    rows = await activity.list_requests(db, key_id, params.up_to, params.fetch, status, code)
    return respond(page(rows, params, _request_out))


def _request_out(row: Row) -> dict[str, Any]:
    line = dict(row)
    del line["id"]
    return line


@router.delete(
    "/{key_id}", summary="Revoke an API key (at once, everywhere)", response_model=KeyOut
)
async def revoke_key(key_id: Id, user: CurrentUser, db: Db, request: Request) -> Response:
    async with db.transaction() as tx:
        key = (await _visible_key(tx, user, key_id, utcnow())).key
        actor = Actor.user(request, user.user_id, user.email)
        await key_service.revoke_key(tx, key, actor=actor)
        now = utcnow()
        listed = await _visible_key(tx, user, key_id, now)
    [key_out] = await _listed_out(db, [listed], now)
    return respond(key_out)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    summary="Rotate: a new key, the old one expires",
    responses=no_store(201),
    response_model=KeyCreated,
)
async def rotate_key(
    key_id: Id, body: KeyRotate, user: CurrentUser, db: Db, request: Request
) -> Response:
    """Only the key's creator rotates it: the new secret acts as its creator, so anyone else
    would be handed a key that acts as another person. Owners and admins may revoke it."""
    try:
        async with db.transaction() as tx:
            old, creator_email, *_ = await _visible_key(tx, user, key_id, utcnow())
            if old.created_by_id != user.user_id:
                raise Forbidden(
                    f"Only the key's creator ({creator_email}) can rotate it, because the "
                    "new key acts as them. Revoke it instead, or ask them to rotate it.",
                    code="not_key_creator",
                )
            locked = await queries.lock_key(tx, user.workspace_id, key_id)
            assert locked is not None
            key, issued = await key_service.rotate_key(
                tx,
                locked,
                plan=user.plan,
                pepper=request.app.state.settings.pepper,
                grace_seconds=body.expire_old_after_seconds,
                actor=Actor.user(request, user.user_id, user.email),
            )
    except IntegrityViolation:
        # Another rotation of the same key committed first (the unique rotated_from_id).
        successor = await queries.successor_id(db, key_id)
        raise Conflict(
            f"Key {key_id} was already rotated: its successor is key {successor}."
        ) from None
    key_out = _key_out(key, user.email, 0, [], utcnow())
    return respond({**key_out, "key": issued.key}, 201, NO_STORE)
