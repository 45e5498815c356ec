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
    SELECT * FROM unnest($1::varchar[], $2::bytea[], $3::varchar[], $9::varchar[])
        WITH ORDINALITY AS a(public_id, key_hash, workspace_slug, client_ip, n)
), found AS (
    SELECT k.id, k.public_id, k.name, k.key_hash, k.scope, k.permissions::text,
           k.project_ids::text, k.expires_at, k.revoked_at IS NOT NULL AS revoked,
           k.last_used_at, k.created_by_id, m.role, w.id AS workspace_id, w.slug,
           w.name AS workspace_name, w.plan, w.quota_override, w.billing_anchor,
           k.allowed_ips::text AS allowed_ips, k.rate_limit_requests, k.rate_limit_seconds,
           $8::bigint / k.rate_limit_seconds * k.rate_limit_seconds AS window_start
    FROM api_keys AS k
    JOIN workspaces AS w ON w.id = k.workspace_id
    LEFT JOIN memberships AS m ON m.id = k.membership_id
    WHERE k.public_id = ANY($1::varchar[])
), checked AS (
    SELECT f.workspace_id, f.id AS api_key_id, f.plan, f.quota_override, f.billing_anchor,
           f.rate_limit_requests, f.window_start, a.n,
           row_number() OVER (PARTITION BY f.id ORDER BY a.n) - 1 AS key_position
    FROM attempt AS a
    JOIN found AS f ON f.public_id = a.public_id
    WHERE f.key_hash = a.key_hash AND NOT f.revoked AND f.role IS NOT NULL
      AND (f.expires_at IS NULL OR f.expires_at > $4)
      AND (a.workspace_slug IS NULL OR a.workspace_slug = f.slug)
      AND (f.scope <> 'custom' OR f.plan = 'business')
      AND (f.allowed_ips IS NULL OR EXISTS (
          SELECT 1 FROM json_array_elements_text(f.allowed_ips::json) AS c(cidr)
          WHERE a.client_ip::inet <<= c.cidr::cidr))
), window_wanted AS (
    SELECT DISTINCT api_key_id, window_start FROM checked WHERE window_start IS NOT NULL
), window_locked AS (
    SELECT r.api_key_id, r.requests AS used
    FROM key_rate_windows AS r
    JOIN window_wanted AS w ON w.api_key_id = r.api_key_id AND w.window_start = r.window_start
    ORDER BY r.api_key_id
    FOR UPDATE OF r
), request AS (
    SELECT c.workspace_id, c.api_key_id, c.n,
           c.window_start IS NULL OR c.key_position < c.rate_limit_requests - wl.used AS passed
    FROM checked AS c
    LEFT JOIN window_locked AS wl ON wl.api_key_id = c.api_key_id
), ranked AS (
    SELECT workspace_id, api_key_id,
           row_number() OVER (PARTITION BY workspace_id ORDER BY n) - 1 AS position
    FROM request WHERE passed
), demand AS (
    SELECT c.workspace_id, billing_period_start(c.billing_anchor, $4) AS period_start,
           COALESCE(c.quota_override, p.quota) AS quota,
           count(*) FILTER (WHERE r.passed)::integer AS wanted
    FROM checked AS c
    JOIN request AS r ON r.n = c.n
    JOIN unnest($5::varchar[], $6::bigint[]) AS p(plan, quota) ON p.plan = c.plan
    GROUP BY c.workspace_id, 2, 3
), locked AS (
    SELECT u.workspace_id, u.requests AS used
    FROM workspace_usage AS u
    JOIN demand AS d ON d.workspace_id = u.workspace_id AND d.period_start = u.period_start
    ORDER BY u.workspace_id
    FOR UPDATE OF u
), complete AS (
    -- Count nothing unless every usage row and rate-limit window was there to lock.
    SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM demand)
       AND (SELECT count(*) FROM window_locked) = (SELECT count(*) FROM window_wanted) AS ok
), counted AS (
    UPDATE workspace_usage AS u
    SET requests = l.used + LEAST(d.wanted, GREATEST(0, d.quota - l.used))
    FROM locked AS l JOIN demand AS d ON d.workspace_id = l.workspace_id
    WHERE u.workspace_id = l.workspace_id AND u.period_start = d.period_start
      AND (SELECT ok FROM complete)
    RETURNING u.workspace_id, l.used, u.requests - l.used AS granted
), admitted AS (
    SELECT r.api_key_id, d.period_start, count(*)::integer AS requests
    FROM ranked AS r
    JOIN counted AS c ON c.workspace_id = r.workspace_id
    JOIN demand AS d ON d.workspace_id = r.workspace_id
    WHERE r.position < c.granted
    GROUP BY r.api_key_id, d.period_start
), per_period AS (
    INSERT INTO key_usage AS k (api_key_id, period_start, requests)
    SELECT api_key_id, period_start, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, period_start) DO UPDATE SET requests = k.requests + excluded.requests
), per_day AS (
    INSERT INTO key_daily_usage AS k (api_key_id, day, requests)
    SELECT api_key_id, ($4 AT TIME ZONE 'UTC')::date, requests FROM admitted ORDER BY api_key_id
    ON CONFLICT (api_key_id, day) DO UPDATE SET requests = k.requests + excluded.requests
), per_window AS (
    UPDATE key_rate_windows AS r SET requests = r.requests + ad.requests
    FROM admitted AS ad JOIN window_wanted AS w ON w.api_key_id = ad.api_key_id
    WHERE r.api_key_id = ad.api_key_id AND r.window_start = w.window_start
), windows_over AS (
    DELETE FROM key_rate_windows AS r USING window_wanted AS w
    WHERE r.api_key_id = w.api_key_id AND r.window_start < w.window_start
      AND (SELECT ok FROM complete)
), last_used AS (
    UPDATE api_keys SET last_used_at = $4
    WHERE id IN (SELECT api_key_id FROM admitted) AND (last_used_at IS NULL OR last_used_at <= $7)
)
SELECT f.*, d.period_start, d.quota, d.wanted, c.used, ad.requests AS admitted,
       ww.window_start AS window_wanted, wl.used AS window_used
FROM found AS f
LEFT JOIN demand AS d ON d.workspace_id = f.workspace_id
LEFT JOIN counted AS c ON c.workspace_id = f.workspace_id
LEFT JOIN admitted AS ad ON ad.api_key_id = f.id
LEFT JOIN window_wanted AS ww ON ww.api_key_id = f.id
LEFT JOIN window_locked AS wl ON wl.api_key_id = f.id
"""

_POSTGRES_CREATE_ROWS = """
WITH usage AS (
    INSERT INTO workspace_usage (workspace_id, period_start, requests)
    SELECT workspace_id, period_start, 0
    FROM unnest($1::integer[], $2::timestamptz[]) AS d(workspace_id, period_start)
    ON CONFLICT (workspace_id, period_start) DO NOTHING
)
INSERT INTO key_rate_windows (api_key_id, window_start, requests)
SELECT api_key_id, window_start, 0
FROM unnest($3::integer[], $4::bigint[]) AS w(api_key_id, window_start)
ON CONFLICT (api_key_id, window_start) DO NOTHING
"""


async def admit_postgres(
    conn: Any,
    attempts: Sequence[tuple[str, bytes, str | None, str | None]],
    now: dt.datetime,
    plan_quotas: Mapping[str, int],
    last_used_before: dt.datetime,
) -> list[Any]:
    """Look up, check, admit and count a batch of attempts ``(public_id, key_hash,
    workspace_slug, client_ip)`` in one statement on an asyncpg connection.

    One row per key found: the key's columns, then its workspace's ``period_start``,
    ``quota``, ``wanted`` (how many of its requests passed the checks and their keys' rate
    limits; NULL if none passed the checks) and ``used`` (its count before the batch; NULL
    if nothing was counted), how many of the key's own requests it ``admitted`` (NULL if
    none), and for a key with a rate limit, its ``window_wanted`` (the current window's
    start, if requests passed the checks) and ``window_used`` (what that window admitted
    before the batch).
    """
    public_ids, key_hashes, slugs, ips = (list(column) for column in zip(*attempts, strict=True))
    arguments = [
        public_ids,
        key_hashes,
        slugs,
        now,
        list(plan_quotas),
        list(plan_quotas.values()),
        last_used_before,
        int(now.timestamp()),
        ips,
    ]
    rows: list[Any] = await conn.fetch(POSTGRES_ADMIT, *arguments)
    usage, windows = _uncounted(rows)
    if usage or windows:
        # A period's (or a rate-limit window's) first requests: create its row, then run
        # the whole batch again.
        await conn.execute(
            _POSTGRES_CREATE_ROWS,
            list(usage),
            list(usage.values()),
            list(windows),
            list(windows.values()),
        )
        rows = await conn.fetch(POSTGRES_ADMIT, *arguments)
        still, still_windows = _uncounted(rows)
        if still or still_windows:
            raise LookupError(
                f"no usage row for workspaces {sorted(still)} or window for keys "
                f"{sorted(still_windows)}"
            )
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


def _uncounted(rows: list[Any]) -> tuple[dict[int, dt.datetime], dict[int, int]]:
    """What kept the statement from counting (it then counts nothing): the workspaces whose
    period's usage row is missing, with that period, and the keys whose current rate-limit
    window is missing, with that window."""
    usage = {
        row["workspace_id"]: row["period_start"]
        for row in rows
        if row["wanted"] is not None and row["used"] is None
    }
    windows = {
        row["id"]: row["window_wanted"]
        for row in rows
        if row["window_wanted"] is not None and row["window_used"] is None
    }
    return usage, windows


def window_counts_sqlite(cursor: sqlite3.Cursor, windows: Mapping[int, int]) -> dict[int, int]:
    """What each key's current rate-limit window (``windows``: key id → window start)
    admitted so far, inside the gate's ``BEGIN IMMEDIATE`` transaction."""
    counts: dict[int, int] = {}
    for key_id, window_start in sorted(windows.items()):
        row = cursor.execute(
            "SELECT requests FROM key_rate_windows WHERE api_key_id = ? AND window_start = ?",
            (key_id, window_start),
        ).fetchone()
        if row is not None:
            counts[key_id] = row[0]
    return counts


def meter_sqlite(
    cursor: sqlite3.Cursor,
    demands: Sequence[Demand],
    stale_key_ids: list[int],
    now: dt.datetime,
    windows: Mapping[int, int],
) -> dict[int, int]:
    """Admit and count inside a ``BEGIN IMMEDIATE`` transaction, adding what each key with
    a rate limit was admitted to its window (``windows``); counts before the batch."""
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
        limited = [
            (key_id, windows[key_id], n)
            for key_id, n in sorted(per_day.items())
            if key_id in windows
        ]
        if limited:
            cursor.executemany(
                "INSERT INTO key_rate_windows (api_key_id, window_start, requests) "
                "VALUES (?, ?, ?) ON CONFLICT (api_key_id, window_start) "
                "DO UPDATE SET requests = requests + excluded.requests",
                limited,
            )
            cursor.executemany(  # the windows before are over
                "DELETE FROM key_rate_windows WHERE api_key_id = ? AND window_start < ?",
                [(key_id, window_start) for key_id, window_start, _ in limited],
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
