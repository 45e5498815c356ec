"""Reading usage back: the workspace's quota state and a key's period and daily counts."""

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from craftdesk.auth.principal import Quota
from craftdesk.config import Settings
from craftdesk.db import utcnow
from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
from craftdesk.metering.periods import BillingPeriod


def quota_limit(settings: Settings, plan: str, override: int | None) -> int:
    return override if override is not None else settings.plan_quota(plan)


async def workspace_quota(
    session: AsyncSession,
    settings: Settings,
    *,
    workspace_id: int,
    plan: str,
    quota_override: int | None,
    billing_anchor: dt.datetime,
) -> Quota:
    period = BillingPeriod.containing(billing_anchor, utcnow())
    used = await session.scalar(
        select(WorkspaceUsage.requests).where(
            WorkspaceUsage.workspace_id == workspace_id,
            WorkspaceUsage.period_start == period.start,
        )
    )
    return Quota(quota_limit(settings, plan, quota_override), used or 0, period)


async def key_daily_series(
    session: AsyncSession, api_key_id: int, period: BillingPeriod
) -> tuple[int, list[tuple[dt.date, int]]]:
    """This period's count of the key, and its count per day of the period up to today."""
    in_period = await session.scalar(
        select(KeyUsage.requests).where(
            KeyUsage.api_key_id == api_key_id, KeyUsage.period_start == period.start
        )
    )
    first = period.start.date()
    last = min(utcnow(), period.end).date()
    rows = await session.execute(
        select(KeyDailyUsage.day, KeyDailyUsage.requests).where(
            KeyDailyUsage.api_key_id == api_key_id,
            KeyDailyUsage.day >= first,
            KeyDailyUsage.day <= last,
        )
    )
    by_day = {day: count for day, count in rows}
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return in_period or 0, [(day, by_day.get(day, 0)) for day in days]
