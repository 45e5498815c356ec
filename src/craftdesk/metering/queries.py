"""Reading the counts back (the key gate writes them: ``craftdesk.metering.counter``)."""

import datetime as dt

from craftdesk.db import Queries, Row


async def workspace_used(db: Queries, workspace_id: int, period_start: dt.datetime) -> int:
    used: int | None = await db.fetchval(
        "SELECT requests FROM workspace_usage WHERE workspace_id = $1 AND period_start = $2",
        workspace_id,
        period_start,
    )
    return used or 0


async def key_used(db: Queries, api_key_id: int, period_start: dt.datetime) -> int:
    used: int | None = await db.fetchval(
        "SELECT requests FROM key_usage WHERE api_key_id = $1 AND period_start = $2",
        api_key_id,
        period_start,
    )
    return used or 0


async def key_days(db: Queries, api_key_id: int, first: dt.date, last: dt.date) -> list[Row]:
    """The key's ``day`` and ``requests`` of each day it was used from ``first`` to ``last``."""
    return await db.fetch(
        """SELECT day, requests FROM key_daily_usage
           WHERE api_key_id = $1 AND day >= $2 AND day <= $3 ORDER BY day""",
        api_key_id,
        first,
        last,
    )
