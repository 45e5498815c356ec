"""Exact counting: admit up to the quota, and record per workspace, key and day.

Called by the key gate once per batch. A workspace's usage row is locked before its count is
read, so concurrent batches from any number of processes never overshoot the quota; the
first requests of a batch are admitted, up to the quota, and only those are counted.

- PostgreSQL: one statement, so one round trip and its own transaction, for the gate's whole
  batch (``POSTGRES_ADMIT``). It looks the keys up and checks each attempt, finds each
  workspace's period (``billing_period_start``, a SQL function from the migrations that
  agrees with ``BillingPeriod``) and quota, locks the usage rows (``SELECT … FOR UPDATE``,
  in workspace order, so two processes' batches cannot deadlock; after waiting on a lock it
  reads the count the other batch committed), adds what it admits, and adds those to the
  keys' period and daily counts. It only locks rows that exist and counts nothing if one is
  missing: for a period's first batch the row is created, then the whole batch run again.
- SQLite: a few statements inside the gate's ``BEGIN IMMEDIATE`` transaction, which already
  holds the database's write lock, given what each workspace's requests ask for (a
  ``Demand``).

SQLite stores ``UTCDateTime`` and ``Date`` as text the way SQLAlchemy writes them, so the
rows written here and those written through the ORM are the same rows.
"""

import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
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


POSTGRES_ADMIT = """
WITH attempt AS (
    SELECT * FROM unnest($1::varchar[], $2::bytea[], $3::varchar[])
        WITH ORDINALITY AS a(public_id, key_hash, workspace_slug, n)
), found AS (
    SELECT k.id, k.public_id, k.name, k.key_hash, k.scope, k.permissions::text,
           k.project_ids::text, k.expires_at, k.revoked_at IS NOT NULL AS revoked,
           k.last_used_at, k.created_by_id, m.role, w.id AS workspace_id, w.slug,
           w.name AS workspace_name, w.plan, w.quota_override, w.billing_anchor
    FROM api_keys AS k
    JOIN workspaces AS w ON w.id = k.workspace_id
    LEFT JOIN memberships AS m ON m.id = k.membership_id
    WHERE k.public_id = ANY($1::varchar[])
), request AS (
    SELECT f.workspace_id, f.id AS api_key_id,
           billing_period_start(f.billing_anchor, $4) AS period_start,
           COALESCE(f.quota_override, p.quota) AS quota,
           row_number() OVER (PARTITION BY f.workspace_id ORDER BY a.n) - 1 AS position
    FROM attempt AS a
    JOIN found AS f ON f.public_id = a.public_id
    JOIN unnest($5::varchar[], $6::bigint[]) AS p(plan, quota) ON p.plan = f.plan
    WHERE f.key_hash = a.key_hash AND NOT f.revoked AND f.role IS NOT NULL
      AND (f.expires_at IS NULL OR f.expires_at > $4)
      AND (a.workspace_slug IS NULL OR a.workspace_slug = f.slug)
      AND (f.scope <> 'custom' OR f.plan = 'business')
), demand AS (
    SELECT workspace_id, period_start, quota, count(*)::integer AS wanted
    FROM request
    GROUP BY workspace_id, period_start, quota
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
      AND (SELECT count(*) FROM locked) = (SELECT count(*) FROM demand)
    RETURNING u.workspace_id, l.used, u.requests - l.used AS granted
), admitted AS (
    SELECT r.api_key_id, r.period_start, count(*)::integer AS requests
    FROM request AS r JOIN counted AS c ON c.workspace_id = r.workspace_id
    WHERE r.position < c.granted
    GROUP BY r.api_key_id, r.period_start
), per_period AS (
    INSERT INTO key_usage AS k (api_key_id, period_start, requests)
    SELECT api_key_id, period_start, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, period_start) DO UPDATE SET requests = k.requests + excluded.requests
), per_day AS (
    INSERT INTO key_daily_usage AS k (api_key_id, day, requests)
    SELECT api_key_id, ($4 AT TIME ZONE 'UTC')::date, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, day) DO UPDATE SET requests = k.requests + excluded.requests
), last_used AS (
    UPDATE api_keys SET last_used_at = $4
    WHERE id IN (SELECT api_key_id FROM admitted) AND (last_used_at IS NULL OR last_used_at <= $7)
)
SELECT f.*, d.period_start, d.quota, d.wanted, c.used, ad.requests AS admitted
FROM found AS f
LEFT JOIN demand AS d ON d.workspace_id = f.workspace_id
LEFT JOIN counted AS c ON c.workspace_id = f.workspace_id
LEFT JOIN admitted AS ad ON ad.api_key_id = f.id
"""

_POSTGRES_CREATE_ROWS = """
INSERT INTO workspace_usage (workspace_id, period_start, requests)
SELECT workspace_id, period_start, 0
FROM unnest($1::integer[], $2::timestamptz[]) AS d(workspace_id, period_start)
ON CONFLICT (workspace_id, period_start) DO NOTHING
"""


async def admit_postgres(
    conn: Any,
    attempts: Sequence[tuple[str, bytes, str | None]],
    now: dt.datetime,
    plan_quotas: Mapping[str, int],
    last_used_before: dt.datetime,
) -> list[Any]:
    """Look up, check, admit and count a batch of attempts ``(public_id, key_hash,
    workspace_slug)`` in one statement on an asyncpg connection.

    One row per key found: the key's columns, then its workspace's ``period_start``,
    ``quota``, ``wanted`` (how many of its requests passed the checks; NULL if none did)
    and ``used`` (its count before the batch; NULL if nothing was counted), and how many of
    the key's own requests it ``admitted`` (NULL if none).
    """
    public_ids, key_hashes, slugs = (list(column) for column in zip(*attempts, strict=True))
    arguments = [
        public_ids,
        key_hashes,
        slugs,
        now,
        list(plan_quotas),
        list(plan_quotas.values()),
        last_used_before,
    ]
    rows: list[Any] = await conn.fetch(POSTGRES_ADMIT, *arguments)
    uncounted = _uncounted(rows)
    if uncounted:
        # A period's first requests: create its usage row, then run the whole batch again.
        await conn.execute(_POSTGRES_CREATE_ROWS, list(uncounted), list(uncounted.values()))
        rows = await conn.fetch(POSTGRES_ADMIT, *arguments)
        if still := _uncounted(rows):
            raise LookupError(f"no usage row for workspaces {sorted(still)}")
    return rows


_POSTGRES_REFUND = """
WITH refund AS (
    SELECT * FROM unnest($1::integer[], $2::integer[], $3::timestamptz[])
        AS r(api_key_id, requests, period_start)
), per_workspace AS (
    UPDATE workspace_usage AS u SET requests = u.requests - r.requests
    FROM (SELECT k.workspace_id, r.period_start, sum(r.requests) AS requests
          FROM refund AS r JOIN api_keys AS k ON k.id = r.api_key_id
          GROUP BY k.workspace_id, r.period_start) AS r
    WHERE u.workspace_id = r.workspace_id AND u.period_start = r.period_start
), per_period AS (
    UPDATE key_usage AS k SET requests = k.requests - r.requests FROM refund AS r
    WHERE k.api_key_id = r.api_key_id AND k.period_start = r.period_start
)
UPDATE key_daily_usage AS k SET requests = k.requests - r.requests FROM refund AS r
WHERE k.api_key_id = r.api_key_id AND k.day = ($4 AT TIME ZONE 'UTC')::date
"""


async def refund_postgres(conn: Any, rows: Sequence[Any], now: dt.datetime) -> None:
    """Take back what ``admit_postgres`` counted for the keys of ``rows`` (its result rows),
    for requests that were not answered as counted."""
    await conn.execute(
        _POSTGRES_REFUND,
        [row["id"] for row in rows],
        [row["admitted"] for row in rows],
        [row["period_start"] for row in rows],
        now,
    )


def _uncounted(rows: list[Any]) -> dict[int, dt.datetime]:
    """The workspaces whose requests passed the checks but were not counted, because their
    period's usage row is missing (the statement then counts nothing), with that period."""
    return {
        row["workspace_id"]: row["period_start"]
        for row in rows
        if row["wanted"] is not None and row["used"] is None
    }


def meter_sqlite(
    cursor: sqlite3.Cursor,
    demands: Sequence[Demand],
    stale_key_ids: list[int],
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
