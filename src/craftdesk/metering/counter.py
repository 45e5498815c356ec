"""Exact counting: admit up to the quota, and record per workspace, key and day.

Called by the key gate once per batch, with what each workspace's requests ask for (a
``Demand``). The workspace's usage row is locked before its count is read, so concurrent
batches from any number of processes never overshoot the quota; the first requests of a
batch are admitted, up to the quota, and only those are counted.

- PostgreSQL: one statement, so one round trip and its own transaction. It locks the usage
  rows (``SELECT … FOR UPDATE``, in workspace order, so two processes' batches cannot
  deadlock; after waiting on a lock it reads the count the other batch committed), adds
  what it admits, and adds those to the keys' period and daily counts. It only locks rows
  that exist: for a period's first batch the row is created, then the batch metered again.
- SQLite: a few statements inside the gate's ``BEGIN IMMEDIATE`` transaction, which already
  holds the database's write lock.

SQLite stores ``UTCDateTime`` and ``Date`` as text the way SQLAlchemy writes them, so the
rows written here and those written through the ORM are the same rows.
"""

import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from craftdesk.metering.periods import BillingPeriod


@dataclass(slots=True)
class Demand:
    """The requests of one workspace in a batch, in arrival order, asking to be admitted."""

    workspace_id: int
    period: BillingPeriod
    limit: int
    key_ids: list[int]  # the key of each request

    def admitted(self, used: int) -> int:
        """How many of the requests fit in the quota, given the count before them."""
        return min(len(self.key_ids), max(0, self.limit - used))


_POSTGRES_METER = """
WITH demand AS (
    SELECT * FROM unnest($1::integer[], $2::timestamptz[], $3::bigint[], $4::integer[])
        AS d(workspace_id, period_start, quota, wanted)
), request AS (
    SELECT * FROM unnest($5::integer[], $6::integer[], $7::integer[])
        AS r(workspace_id, api_key_id, position)
), locked AS (
    SELECT u.workspace_id, u.requests AS used
    FROM workspace_usage AS u
    JOIN demand AS d ON d.workspace_id = u.workspace_id AND d.period_start = u.period_start
    ORDER BY u.workspace_id
    FOR UPDATE OF u
), counted AS (
    UPDATE workspace_usage AS u
    SET requests = l.used + LEAST(d.wanted, GREATEST(0, d.quota - l.used))
    FROM locked AS l JOIN demand AS d ON d.workspace_id = l.workspace_id
    WHERE u.workspace_id = l.workspace_id AND u.period_start = d.period_start
    RETURNING u.workspace_id, u.period_start, l.used, u.requests - l.used AS granted
), admitted AS (
    SELECT r.api_key_id, c.period_start, count(*)::integer AS requests
    FROM request AS r JOIN counted AS c ON c.workspace_id = r.workspace_id
    WHERE r.position < c.granted
    GROUP BY r.api_key_id, c.period_start
), per_period AS (
    INSERT INTO key_usage AS k (api_key_id, period_start, requests)
    SELECT api_key_id, period_start, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, period_start) DO UPDATE SET requests = k.requests + excluded.requests
), per_day AS (
    INSERT INTO key_daily_usage AS k (api_key_id, day, requests)
    SELECT api_key_id, $8::date, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, day) DO UPDATE SET requests = k.requests + excluded.requests
), last_used AS (
    UPDATE api_keys SET last_used_at = $9
    WHERE id = ANY($10::integer[]) AND id IN (SELECT api_key_id FROM admitted)
)
SELECT workspace_id, used FROM counted
"""

_POSTGRES_CREATE_ROWS = """
INSERT INTO workspace_usage (workspace_id, period_start, requests)
SELECT workspace_id, period_start, 0
FROM unnest($1::integer[], $2::timestamptz[]) AS d(workspace_id, period_start)
ON CONFLICT (workspace_id, period_start) DO NOTHING
"""


async def meter_postgres(
    conn: Any, demands: Sequence[Demand], stale_key_ids: list[int], now: dt.datetime
) -> dict[int, int]:
    """Admit and count on an asyncpg connection; each workspace's count before the batch.

    The usage row of a period is created by its first request, in a statement of its own:
    the metering statement only locks rows that already exist.
    """
    used: dict[int, int] = {}
    todo = list(demands)
    for attempt in range(2):
        rows = await conn.fetch(_POSTGRES_METER, *_postgres_arguments(todo, stale_key_ids, now))
        used.update((workspace_id, count) for workspace_id, count in rows)
        todo = [demand for demand in todo if demand.workspace_id not in used]
        if not todo:
            return used
        if attempt == 0:
            await conn.execute(
                _POSTGRES_CREATE_ROWS,
                [demand.workspace_id for demand in todo],
                [demand.period.start for demand in todo],
            )
    raise LookupError(f"no usage row for workspaces {[d.workspace_id for d in todo]}")


def _postgres_arguments(
    demands: Sequence[Demand], stale_key_ids: list[int], now: dt.datetime
) -> list[Any]:
    request_workspaces, request_keys, positions = [], [], []
    for demand in demands:
        for position, key_id in enumerate(demand.key_ids):
            request_workspaces.append(demand.workspace_id)
            request_keys.append(key_id)
            positions.append(position)
    return [
        [demand.workspace_id for demand in demands],
        [demand.period.start for demand in demands],
        [demand.limit for demand in demands],
        [len(demand.key_ids) for demand in demands],
        request_workspaces,
        request_keys,
        positions,
        now.date(),
        now,
        stale_key_ids,
    ]


def meter_sqlite(
    cursor: sqlite3.Cursor, demands: Sequence[Demand], stale_key_ids: list[int],
    now: dt.datetime,
) -> dict[int, int]:
    """Admit and count inside a ``BEGIN IMMEDIATE`` transaction; counts before the batch."""
    used: dict[int, int] = {}
    per_period: Counter[tuple[int, str]] = Counter()
    for demand in sorted(demands, key=lambda demand: demand.workspace_id):
        start = _sqlite_datetime_text(demand.period.start)
        row = cursor.execute(
            "SELECT requests FROM workspace_usage WHERE workspace_id = ? AND period_start = ?",
            (demand.workspace_id, start),
        ).fetchone()
        used[demand.workspace_id] = before = row[0] if row else 0
        admitted = demand.admitted(before)
        if admitted:
            cursor.execute(
                "INSERT INTO workspace_usage (workspace_id, period_start, requests) "
                "VALUES (?, ?, ?) ON CONFLICT (workspace_id, period_start) "
                "DO UPDATE SET requests = requests + excluded.requests",
                (demand.workspace_id, start, admitted),
            )
            per_period.update((key_id, start) for key_id in demand.key_ids[:admitted])
    if per_period:
        cursor.executemany(
            "INSERT INTO key_usage (api_key_id, period_start, requests) VALUES (?, ?, ?) "
            "ON CONFLICT (api_key_id, period_start) "
            "DO UPDATE SET requests = requests + excluded.requests",
            [(key_id, start, n) for (key_id, start), n in sorted(per_period.items())],
        )
        per_day = Counter[int]()
        for (key_id, _), n in per_period.items():
            per_day[key_id] += n
        today = now.date().isoformat()
        cursor.executemany(
            "INSERT INTO key_daily_usage (api_key_id, day, requests) VALUES (?, ?, ?) "
            "ON CONFLICT (api_key_id, day) DO UPDATE SET requests = requests + excluded.requests",
            [(key_id, today, n) for key_id, n in sorted(per_day.items())],
        )
        touched = sorted(set(stale_key_ids) & set(per_day))
        if touched:
            marks = ", ".join("?" * len(touched))
            cursor.execute(
                f"UPDATE api_keys SET last_used_at = ? WHERE id IN ({marks})",
                [_sqlite_datetime_text(now), *touched],
            )
    return used


def _sqlite_datetime_text(value: dt.datetime) -> str:
    """How SQLAlchemy stores a ``UTCDateTime`` in SQLite: naive UTC, with microseconds."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
