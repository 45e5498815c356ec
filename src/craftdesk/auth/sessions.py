"""Dashboard sessions: sign in with workspace, email and password; a cookie plus a CSRF token.

The cookie holds a random token; the database holds only its SHA-256. Unsafe requests must
echo the session's CSRF token in ``X-CSRF-Token``. Wrong email and wrong password get the
same 401, after the same work; repeated failures on one account, or from one client address,
are locked out for a while. A session belongs to the membership it was signed in under and
ends with it.
"""

import asyncio
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

from craftdesk.audit.service import Actor, Target, client_ip, record
from craftdesk.auth import queries
from craftdesk.auth.bearer import bearer_token
from craftdesk.auth.passwords import verify_password
from craftdesk.auth.permissions import Role
from craftdesk.config import Plan, Settings
from craftdesk.db import Db, IntegrityViolation, Row, Transaction, utcnow
from craftdesk.errors import SESSION_ROUTE_ERRORS, Forbidden, TooManyAttempts, Unauthorized
from craftdesk.openapi import PUBLIC, no_store
from craftdesk.routing import Route
from craftdesk.schemas import NO_NUL, Body

COOKIE = "craftdesk_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger("craftdesk.auth")

router = APIRouter(
    prefix="/v1/sessions", tags=["sessions"], responses=SESSION_ROUTE_ERRORS, route_class=Route
)


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


class SessionCookie(APIKeyCookie):
    """The session check, documented as the dashboard's cookie scheme: one dependency with
    none of its own (FastAPI spends some 25 µs a request on each dependency it solves, and
    the check needs only the request)."""

    async def __call__(self, request: Request) -> SignedIn:  # type: ignore[override]
        # Let the requests already waiting go first. On SQLite nothing else in a session
        # route suspends, and under uvloop (uvicorn's loop, when installed) requests that
        # never suspend were served unevenly under load: at 32 connections the dashboard's
        # key list measured p99 330 ms without this, 65-110 ms with it (p50 28 ms either way).
        await asyncio.sleep(0)
        if bearer_token(request) is not None:
            raise Forbidden(
                "Key management needs a signed-in dashboard session, not an API key. "
                "Use the dashboard or sign in with POST /v1/sessions.",
                code="session_required",
            )
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 128:
            raise _not_signed_in()
        row = await queries.signed_in(request.app.state.db, _digest(token))
        if row is None or row["expires_at"] <= utcnow():
            raise _not_signed_in()
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
            request.headers.get(CSRF_HEADER, "").encode(),
            row["csrf_token"].encode(),
        ):
            raise Forbidden(
                "Send the session's CSRF token in the X-CSRF-Token header.", code="csrf_failed"
            )
        return _signed_in(row["id"], row["csrf_token"], row)


signed_in = SessionCookie(
    name=COOKIE,
    scheme_name="DashboardSession",
    description="The dashboard's session cookie, set by POST /v1/sessions. Unsafe requests "
    "also send the session's CSRF token in the X-CSRF-Token header.",
    auto_error=False,
)


def _signed_in(session_digest: str, csrf_token: str, row: Row) -> SignedIn:
    """The user of a session (``row``: its user, membership and workspace)."""
    return SignedIn(
        session_id=session_digest,
        csrf_token=csrf_token,
        user_id=row["user_id"],
        email=row["email"],
        membership_id=row["membership_id"],
        role=row["role"],
        workspace_id=row["workspace_id"],
        workspace_slug=row["slug"],
        workspace_name=row["name"],
        plan=row["plan"],
        billing_anchor=row["billing_anchor"],
        quota_override=row["quota_override"],
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
    tx: Transaction, throttle: str, now: dt.datetime, limit: int, lockout_seconds: int
) -> TooManyAttempts | None:
    """Count a sign-in attempt against ``throttle`` (an account, or a client address) before
    its password is checked, in one statement, so that concurrent guesses cannot outrun the
    lock-out: past ``limit`` failures it is locked for a while. Returns the 429 to answer
    if it is locked (raised once the count is committed)."""
    counted = await queries.count_attempt(tx, throttle, now)
    failures, locked_until = counted["failures"], counted["locked_until"]
    if locked_until is None and failures > limit:
        locked_until = now + dt.timedelta(seconds=lockout_seconds)
        await queries.lock(tx, throttle, locked_until)
        kind = "a client address" if throttle.startswith("i:") else "an account"
        logger.warning("sign-in: %s locked for %d s", kind, lockout_seconds)
    if locked_until is None:
        return None
    retry_after = int((locked_until - now).total_seconds()) + 1
    return TooManyAttempts(
        f"Too many failed sign-ins from here or for this account. Try again in {retry_after} s.",
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
async def sign_in(body: SignInBody, request: Request, response: Response, db: Db) -> SessionOut:
    """Failed sign-ins are audited only for real accounts of the workspace, so anonymous
    traffic cannot fill the trail (nor choose what it says); refused (429) attempts are not
    audited one by one."""
    settings: Settings = request.app.state.settings
    now = utcnow()
    email = body.email.strip().lower()
    # Prefixed, so that no account can be named like an address (at most 320 characters).
    account = f"a:{body.workspace}:{email}"
    address = f"i:{client_ip(request)}"
    async with db.transaction() as tx:
        refusal = await _count_attempt(
            tx, address, now, settings.login_max_failures_per_ip, settings.login_lockout_seconds
        ) or await _count_attempt(
            tx, account, now, settings.login_max_failures, settings.login_lockout_seconds
        )
    if refusal is not None:
        raise refusal
    # No transaction stays open through the slow check: on SQLite it would hold the write
    # lock, and every API request waits on that to be counted.
    row = await queries.account(db, body.workspace, email)
    password_hash = row["password_hash"] if row is not None else None
    if not await anyio.to_thread.run_sync(verify_password, body.password, password_hash):
        if row is not None:
            async with db.transaction() as tx:
                await record(
                    tx,
                    workspace_id=row["workspace_id"],
                    action="session.sign_in_failed",
                    actor=Actor.anonymous(request),
                    target=Target("account", row["user_id"], email),
                    details={"reason": "invalid_login", "workspace": row["slug"]},
                )
        raise _invalid_login()
    assert row is not None
    token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    try:
        async with db.transaction() as tx:
            await queries.forget(tx, account)
            # The address's count is of failures: this attempt was none.
            await queries.uncount_failure(tx, address)
            await queries.insert_session(
                tx,
                session_digest=_digest(token),
                user_id=row["user_id"],
                workspace_id=row["workspace_id"],
                membership_id=row["membership_id"],
                csrf_token=csrf_token,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.session_ttl_seconds),
            )
            await record(
                tx,
                workspace_id=row["workspace_id"],
                action="session.signed_in",
                actor=Actor.user(request, row["user_id"], email),
                target=Target("account", row["user_id"], email),
                details={"role": row["role"]},
            )
    except IntegrityViolation:
        # The membership was removed while the password was being checked.
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
    return _session_out(_signed_in(_digest(token), csrf_token, {**dict(row), "email": email}))


@router.get("/current", summary="The signed-in session", responses=no_store(200))
async def current_session(user: CurrentUser, response: Response) -> SessionOut:
    response.headers["Cache-Control"] = "no-store"
    return _session_out(user)


@router.delete("/current", status_code=204, summary="Sign out")
async def sign_out(user: CurrentUser, db: Db) -> Response:
    async with db.transaction() as tx:
        await queries.delete_session(tx, user.session_id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response
