"""Exact counting: admit up to the quota, and record per workspace, key and day.

Called by the key gate inside its batch transaction. The workspace's usage row is locked
(an upsert takes the row lock on PostgreSQL; SQLite transactions begin IMMEDIATE) before it
is read, so concurrent batches from any number of processes never overshoot the quota.
Rows are locked in workspace order so that two processes' batches cannot deadlock.
"""

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from craftdesk.metering.models import KeyDailyUsage, KeyUsage, WorkspaceUsage
from craftdesk.metering.periods import BillingPeriod


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def lock_workspace_usage(
    conn: AsyncConnection, workspace_id: int, period: BillingPeriod
) -> int:
    """Lock this period's usage row of the workspace (creating it) and return its count."""
    stmt = _insert(conn, WorkspaceUsage).values(
        workspace_id=workspace_id, period_start=period.start, requests=0
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "period_start"],
        set_={"requests": WorkspaceUsage.__table__.c.requests},
    ).returning(WorkspaceUsage.requests)
    return int((await conn.execute(stmt)).scalar_one())


async def add_workspace_usage(
    conn: AsyncConnection, workspace_id: int, period: BillingPeriod, admitted: int
) -> None:
    await conn.execute(
        update(WorkspaceUsage)
        .where(
            WorkspaceUsage.workspace_id == workspace_id,
            WorkspaceUsage.period_start == period.start,
        )
        .values(requests=WorkspaceUsage.requests + admitted)
    )


async def add_key_usage(
    conn: AsyncConnection,
    admitted: Sequence[tuple[int, BillingPeriod]],
    now: dt.datetime,
) -> None:
    """Add one request per (key, period) entry to the key's period and daily counters."""
    per_period = Counter((key_id, period.start) for key_id, period in admitted)
    per_day = Counter(key_id for key_id, _ in admitted)
    today = now.date()
    for table, rows, index in (
        (
            KeyUsage,
            [
                {"api_key_id": k, "period_start": start, "requests": n}
                for (k, start), n in sorted(per_period.items())
            ],
            ["api_key_id", "period_start"],
        ),
        (
            KeyDailyUsage,
            [{"api_key_id": k, "day": today, "requests": n} for k, n in sorted(per_day.items())],
            ["api_key_id", "day"],
        ),
    ):
        stmt = _insert(conn, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=index,
            set_={"requests": table.__table__.c.requests + stmt.excluded.requests},
        )
        await conn.execute(stmt, rows)
