"""Dashboard sessions: sign in with workspace, email and password; a cookie plus a CSRF token.

The cookie holds a random token; the database holds only its SHA-256. Unsafe requests must
echo the session's CSRF token in ``X-CSRF-Token``. Wrong email and wrong password get the
same 401, after the same work; repeated failures on one account, or from one client address,
are locked out for a while. A session belongs to the membership it was signed in under and
ends with it.
"""

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import APIKeyCookie
from pydantic import BaseModel, Field
from sqlalchemy import case, delete, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.audit.service import Actor, Target, client_ip, record
from craftdesk.auth.bearer import bearer_token
from craftdesk.auth.models import DashboardSession, LoginThrottle
from craftdesk.auth.passwords import verify_password
from craftdesk.auth.permissions import Role
from craftdesk.config import Plan, Settings
from craftdesk.db import Session, utcnow
from craftdesk.errors import SESSION_ROUTE_ERRORS, Forbidden, TooManyAttempts, Unauthorized
from craftdesk.openapi import PUBLIC, no_store
from craftdesk.schemas import NO_NUL, Body
from craftdesk.workspaces.models import Membership, User, Workspace

COOKIE = "craftdesk_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger("craftdesk.auth")

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=SESSION_ROUTE_ERRORS)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The dashboard user of a request: who, in which workspace, with which role."""

    session_id: str
    csrf_token: str
    user_id: int
    email: str
    membership_id: int
    role: str
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    plan: str
    billing_anchor: dt.datetime
    quota_override: int | None

    @property
    def manages_workspace(self) -> bool:
        return self.role in ("owner", "admin")


class SignInBody(Body):
    workspace: str = Field(min_length=1, max_length=63, pattern=NO_NUL)
    email: str = Field(min_length=3, max_length=254, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str


class WorkspaceOut(BaseModel):
    slug: str
    name: str
    plan: Plan


class SessionOut(BaseModel):
    user: UserOut
    workspace: WorkspaceOut
    role: Role
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _not_signed_in() -> Unauthorized:
    return Unauthorized(
        "not_signed_in", "Sign in to the dashboard first (POST /v1/sessions).", token_sent=False
    )


session_cookie = APIKeyCookie(
    name=COOKIE,
    scheme_name="DashboardSession",
    description="The dashboard's session cookie, set by POST /v1/sessions. Unsafe requests "
    "also send the session's CSRF token in the X-CSRF-Token header.",
    auto_error=False,
)


async def signed_in(
    request: Request, session: Session, token: Annotated[str | None, Depends(session_cookie)]
) -> SignedIn:
    if bearer_token(request) is not None:
        raise Forbidden(
            "Key management needs a signed-in dashboard session, not an API key. "
            "Use the dashboard or sign in with POST /v1/sessions.",
            code="session_required",
        )
    if not token or len(token) > 128:
        raise _not_signed_in()
    row = (
        await session.execute(
            select(DashboardSession, User.email, Membership, Workspace)
            .join(User, User.id == DashboardSession.user_id)
            .join(Membership, Membership.id == DashboardSession.membership_id)
            .join(Workspace, Workspace.id == DashboardSession.workspace_id)
            .where(DashboardSession.id == _digest(token))
        )
    ).first()
    if row is None or row[0].expires_at <= utcnow():
        raise _not_signed_in()
    dashboard_session, email, membership, workspace = row
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        request.headers.get(CSRF_HEADER, "").encode(),
        dashboard_session.csrf_token.encode(),
    ):
        raise Forbidden(
            "Send the session's CSRF token in the X-CSRF-Token header.", code="csrf_failed"
        )
    return _signed_in(dashboard_session, email, membership, workspace)


def _signed_in(
    dashboard_session: DashboardSession, email: str, membership: Membership, workspace: Workspace
) -> SignedIn:
    return SignedIn(
        session_id=dashboard_session.id,
        csrf_token=dashboard_session.csrf_token,
        user_id=membership.user_id,
        email=email,
        membership_id=membership.id,
        role=membership.role,
        workspace_id=workspace.id,
        workspace_slug=workspace.slug,
        workspace_name=workspace.name,
        plan=workspace.plan,
        billing_anchor=workspace.billing_anchor,
        quota_override=workspace.quota_override,
    )


CurrentUser = Annotated[SignedIn, Depends(signed_in)]


def _session_out(user: SignedIn) -> SessionOut:
    return SessionOut(
        user=UserOut(id=user.user_id, email=user.email),
        workspace=WorkspaceOut(slug=user.workspace_slug, name=user.workspace_name, plan=user.plan),
        role=user.role,
        csrf_token=user.csrf_token,
    )


async def _count_attempt(
    session: AsyncSession, throttle: str, now: dt.datetime, limit: int, lockout_seconds: int
) -> None:
    """Count a sign-in attempt against ``throttle`` (an account, or a client address) before
    its password is checked, in one statement, so that concurrent guesses cannot outrun the
    lock-out: past ``limit`` failures it is locked for a while (429). An expired lock starts
    the count over."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    lock_over = LoginThrottle.locked_until <= now
    failures, locked_until = (
        await session.execute(
            insert(LoginThrottle)
            .values(account=throttle, failures=1)
            .on_conflict_do_update(
                index_elements=[LoginThrottle.account],
                set_={
                    "failures": case((lock_over, 1), else_=LoginThrottle.failures + 1),
                    "locked_until": case((lock_over, null()), else_=LoginThrottle.locked_until),
                },
            )
            .returning(LoginThrottle.failures, LoginThrottle.locked_until)
        )
    ).one()
    if locked_until is None and failures > limit:
        locked_until = now + dt.timedelta(seconds=lockout_seconds)
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.account == throttle, LoginThrottle.locked_until.is_(None))
            .values(locked_until=locked_until)
        )
        kind = "a client address" if throttle.startswith("i:") else "an account"
        logger.warning("sign-in: %s locked for %d s", kind, lockout_seconds)
    if locked_until is not None:
        retry_after = int((locked_until - now).total_seconds()) + 1
        raise TooManyAttempts(
            f"Too many failed sign-ins from here or for this account. Try again in "
            f"{retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


def _invalid_login() -> Unauthorized:
    return Unauthorized(
        "invalid_login",
        "The workspace, email or password is wrong. Check them and try again.",
        token_sent=False,
    )


@router.post(
    "",
    status_code=201,
    summary="Sign in to the dashboard",
    responses=no_store(201),
    openapi_extra=PUBLIC,
)
async def sign_in(
    body: SignInBody, request: Request, response: Response, session: Session
) -> SessionOut:
    """Failed sign-ins are audited only for real accounts of the workspace, so anonymous
    traffic cannot fill the trail (nor choose what it says); refused (429) attempts are not
    audited one by one."""
    settings: Settings = request.app.state.settings
    now = utcnow()
    email = body.email.strip().lower()
    # Prefixed, so that no account can be named like an address (at most 320 characters).
    account = f"a:{body.workspace}:{email}"
    address = f"i:{client_ip(request)}"
    try:
        await _count_attempt(
            session, address, now, settings.login_max_failures_per_ip,
            settings.login_lockout_seconds,
        )
        await _count_attempt(
            session, account, now, settings.login_max_failures, settings.login_lockout_seconds
        )
    finally:
        await session.commit()
    row = (
        await session.execute(
            select(User, Membership, Workspace)
            .join(Membership, Membership.user_id == User.id)
            .join(Workspace, Workspace.id == Membership.workspace_id)
            .where(User.email == email, Workspace.slug == body.workspace)
        )
    ).first()
    password_hash = row[0].password_hash if row is not None else None
    # No transaction stays open through the slow check: on SQLite it would hold the write
    # lock, and every API request waits on that to be counted.
    await session.commit()
    if not await anyio.to_thread.run_sync(verify_password, body.password, password_hash):
        if row is not None:
            user, membership, workspace = row
            record(
                session,
                workspace_id=workspace.id,
                action="session.sign_in_failed",
                actor=Actor.anonymous(request),
                target=Target("account", user.id, user.email),
                details={"reason": "invalid_login", "workspace": workspace.slug},
            )
            await session.commit()
        raise _invalid_login()
    assert row is not None
    user, membership, workspace = row
    await session.execute(delete(LoginThrottle).where(LoginThrottle.account == account))
    # The address's count is of failures: this attempt was none.
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.account == address, LoginThrottle.locked_until.is_(None))
        .values(failures=LoginThrottle.failures - 1)
    )
    token = secrets.token_urlsafe(32)
    dashboard_session = DashboardSession(
        id=_digest(token),
        user_id=user.id,
        workspace_id=workspace.id,
        membership_id=membership.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=now + dt.timedelta(seconds=settings.session_ttl_seconds),
    )
    session.add(dashboard_session)
    record(
        session,
        workspace_id=workspace.id,
        action="session.signed_in",
        actor=Actor.user(request, user.id, user.email),
        target=Target("account", user.id, user.email),
        details={"role": membership.role},
    )
    try:
        await session.commit()
    except IntegrityError:
        # The membership was removed while the password was being checked.
        await session.rollback()
        raise _invalid_login() from None
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=not settings.is_development,
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return _session_out(_signed_in(dashboard_session, user.email, membership, workspace))


@router.get("/current", summary="The signed-in session", responses=no_store(200))
async def current_session(user: CurrentUser, response: Response) -> SessionOut:
    response.headers["Cache-Control"] = "no-store"
    return _session_out(user)


@router.delete("/current", status_code=204, summary="Sign out")
async def sign_out(user: CurrentUser, session: Session) -> Response:
    await session.execute(delete(DashboardSession).where(DashboardSession.id == user.session_id))
    await session.commit()
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response
