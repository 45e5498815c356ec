"""Where a key is validated and metered: one transaction for a whole batch of requests.

Requests that arrive while a batch is in flight queue up and go together in the next one
(group commit). Each batch, in one transaction:

1. looks up every key it holds, with its workspace and its creator's current role;
2. checks each key's hash (constant time), revocation, expiry and workspace;
3. locks the usage row of each workspace involved, admits requests up to the quota and
   counts them per workspace, key, period and day.

Only then are the waiting requests answered, so a response never runs ahead of its count,
and nothing is cached: a revoke committed by any process applies to the next request.
"""

import asyncio
import datetime as dt
import hmac
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from craftdesk.auth.permissions import scope_access
from craftdesk.auth.principal import Principal, Quota
from craftdesk.config import Settings
from craftdesk.db import utcnow
from craftdesk.errors import (
    DatabaseUnavailable,
    ProblemError,
    QuotaExceeded,
    Unauthorized,
)
from craftdesk.keys.models import ApiKey
from craftdesk.metering.counter import add_key_usage, add_workspace_usage, lock_workspace_usage
from craftdesk.metering.periods import BillingPeriod
from craftdesk.metering.usage import quota_limit
from craftdesk.workspaces.models import Membership, Workspace

logger = logging.getLogger("craftdesk.auth")

MAX_BATCH = 256
LAST_USED_RESOLUTION = dt.timedelta(seconds=30)

_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.public_id,
        ApiKey.name,
        ApiKey.key_hash,
        ApiKey.scope,
        ApiKey.permissions,
        ApiKey.project_ids,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        ApiKey.created_by_id,
        Membership.role,
        Workspace.id.label("workspace_id"),
        Workspace.slug,
        Workspace.name.label("workspace_name"),
        Workspace.plan,
        Workspace.quota_override,
        Workspace.billing_anchor,
    )
    .join(Workspace, Workspace.id == ApiKey.workspace_id)
    .outerjoin(
        Membership,
        and_(
            Membership.workspace_id == ApiKey.workspace_id,
            Membership.user_id == ApiKey.created_by_id,
        ),
    )
    .where(ApiKey.public_id.in_(bindparam("ids", expanding=True)))
)


@dataclass(slots=True)
class _Attempt:
    public_id: str
    key_hash: bytes
    workspace_slug: str | None
    future: asyncio.Future[Principal] = field(repr=False)

    def resolve(self, outcome: Principal | ProblemError) -> None:
        if self.future.done():  # the client went away
            return
        if isinstance(outcome, ProblemError):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


def _rejection(row: Row[Any] | None, attempt: _Attempt, now: dt.datetime) -> Unauthorized | None:
    if row is None or not hmac.compare_digest(row.key_hash, attempt.key_hash):
        return Unauthorized(
            "invalid_key", "This API key is not valid. Check that you copied it whole, "
            "or generate a new key in Settings → Integrations → API Keys."
        )
    if row.revoked_at is not None or row.role is None:
        return Unauthorized(
            "key_revoked", "This API key has been revoked. Generate a new key and update "
            "the integrations that use it."
        )
    if row.expires_at is not None and row.expires_at <= now:
        return Unauthorized(
            "key_expired", "This API key has expired. Use its replacement or generate a new key."
        )
    if attempt.workspace_slug is not None and attempt.workspace_slug != row.slug:
        return Unauthorized(
            "workspace_mismatch", "This API key belongs to another workspace than the one "
            "named in the CraftDesk-Workspace header. Use a key of that workspace."
        )
    return None


class KeyGate:
    def __init__(self, engine: AsyncEngine, settings: Settings):
        self._engine = engine
        self._settings = settings
        self._pending: list[_Attempt] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-gate")

    async def stop(self) -> None:
        """Answer every request already queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def admit(self, public_id: str, key_hash: bytes, workspace_slug: str | None) -> Principal:
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending.append(_Attempt(public_id, key_hash, workspace_slug, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if self._pending or self._closing:
                self._wakeup.set()
            try:
                async with asyncio.timeout(self._settings.db_timeout_seconds):
                    await self._process(batch)
            except (DBAPIError, OSError, TimeoutError) as exc:
                logger.warning("key gate: database unavailable (%s)", type(exc).__name__)
                for attempt in batch:
                    attempt.resolve(DatabaseUnavailable())
            except Exception:
                logger.exception("key gate: batch failed")
                for attempt in batch:
                    attempt.resolve(ProblemError("Something went wrong on our side. Retry later."))

    async def _process(self, batch: list[_Attempt]) -> None:
        now = utcnow()
        async with self._engine.begin() as conn:
            ids = sorted({attempt.public_id for attempt in batch})
            rows = {row.public_id: row for row in await conn.execute(_LOOKUP, {"ids": ids})}

            by_workspace: dict[int, list[tuple[_Attempt, Row[Any]]]] = defaultdict(list)
            for attempt in batch:
                row = rows.get(attempt.public_id)
                rejection = _rejection(row, attempt, now)
                if rejection is not None:
                    attempt.resolve(rejection)
                else:
                    assert row is not None
                    by_workspace[row.workspace_id].append((attempt, row))

            outcomes: list[tuple[_Attempt, Principal | ProblemError]] = []
            admitted: list[tuple[int, BillingPeriod]] = []
            for workspace_id in sorted(by_workspace):
                group = by_workspace[workspace_id]
                first = group[0][1]
                period = BillingPeriod.containing(first.billing_anchor, now)
                limit = quota_limit(self._settings, first.plan, first.quota_override)
                used = await lock_workspace_usage(conn, workspace_id, period)
                allowed = min(len(group), max(0, limit - used))
                if allowed:
                    await add_workspace_usage(conn, workspace_id, period, allowed)
                for position, (attempt, row) in enumerate(group):
                    if position < allowed:
                        quota = Quota(limit, used + position + 1, period)
                        outcomes.append((attempt, _principal(row, quota)))
                        admitted.append((row.id, period))
                    else:
                        quota = Quota(limit, max(used, limit), period)
                        outcomes.append((attempt, _quota_exceeded(quota, now)))

            if admitted:
                await add_key_usage(conn, admitted, now)
                stale = sorted(
                    {
                        row.id
                        for group in by_workspace.values()
                        for _, row in group
                        if row.last_used_at is None
                        or now - row.last_used_at >= LAST_USED_RESOLUTION
                    }
                )
                if stale:
                    await conn.execute(
                        update(ApiKey).where(ApiKey.id.in_(stale)).values(last_used_at=now)
                    )
        for attempt, outcome in outcomes:
            attempt.resolve(outcome)


def _principal(row: Row[Any], quota: Quota) -> Principal:
    return Principal(
        key_id=row.id,
        public_id=row.public_id,
        key_name=row.name,
        scope=row.scope,
        access=scope_access(row.scope, row.permissions),
        project_ids=row.project_ids,
        expires_at=row.expires_at,
        user_id=row.created_by_id,
        role=row.role,
        workspace_id=row.workspace_id,
        workspace_slug=row.slug,
        workspace_name=row.workspace_name,
        plan=row.plan,
        quota=quota,
    )


def _quota_exceeded(quota: Quota, now: dt.datetime) -> QuotaExceeded:
    retry_after = quota.period.seconds_left(now)
    return QuotaExceeded(
        f"This workspace used all {quota.limit} requests of its billing period. Wait until "
        f"the period resets at {quota.period.end.isoformat()} ({retry_after} s), upgrade the "
        "plan, or make fewer calls.",
        headers={"Retry-After": str(retry_after), **quota.headers(now)},
    )
