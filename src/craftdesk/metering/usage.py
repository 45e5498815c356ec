"""Reading usage back: the workspace's quota state and a key's period and daily counts."""

import datetime as dt

from craftdesk.auth.principal import Quota
from craftdesk.config import Settings
from craftdesk.db import Queries, utcnow
from craftdesk.metering import queries
from craftdesk.metering.periods import BillingPeriod


def quota_limit(settings: Settings, plan: str, override: int | None) -> int:
    return override if override is not None else settings.plan_quota(plan)


async def workspace_quota(
    db: Queries,
    settings: Settings,
    *,
    workspace_id: int,
    plan: str,
    quota_override: int | None,
    billing_anchor: dt.datetime,
) -> Quota:
    period = BillingPeriod.containing(billing_anchor, utcnow())
    used = await queries.workspace_used(db, workspace_id, period.start)
    return Quota(quota_limit(settings, plan, quota_override), used, period)


async def key_daily_series(
    db: Queries, api_key_id: int, period: BillingPeriod
) -> tuple[int, list[tuple[dt.date, int]]]:
    """This period's count of the key, and its count per day of the period up to today."""
    in_period = await queries.key_used(db, api_key_id, period.start)
    first = period.start.date()
    last = min(utcnow(), period.end).date()
    by_day = {
        row["day"]: row["requests"] for row in await queries.key_days(db, api_key_id, first, last)
    }
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return in_period, [(day, by_day.get(day, 0)) for day in days]
