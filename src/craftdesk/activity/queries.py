"""The SQL of the key request log and the outcomes per day."""

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from craftdesk.db import Queries, Row, Transaction, placeholders, value_rows

REQUEST = "id, at, method, path, status, code, ip, user_agent, request_id, duration_ms"


class AlertWindows(NamedTuple):
    """What the alerts look back over (``craftdesk.activity.alerts.windows``)."""

    failing_from_minute: int  # epoch // 60
    new_ip_since: dt.datetime


# The writer passes at most 250 lines a transaction (``recorder.CHUNK_LINES``): each write
# below is one statement, well under SQLite's 32,766 parameters.


async def insert_requests(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add ``rows`` (api_key_id, at, method, path, status, code, ip, user_agent, request_id,
    duration_ms) to the log."""
    await tx.execute(
        f"""INSERT INTO key_requests (api_key_id, at, method, path, status, code, ip,
                user_agent, request_id, duration_ms) VALUES {value_rows(len(rows), ("",) * 10)}""",
        *(value for row in rows for value in row),
    )


async def add_outcomes(tx: Transaction, counts: Sequence[tuple[int, dt.date, str, int]]) -> None:
    """Add ``counts`` (api_key_id, day, code, requests) to the outcomes per day."""
    await tx.execute(
        f"""INSERT INTO key_daily_outcomes AS o (api_key_id, day, code, requests)
            VALUES {value_rows(len(counts), ("", "::date", "", ""))}
            ON CONFLICT (api_key_id, day, code)
            DO UPDATE SET requests = o.requests + excluded.requests""",
        *(value for row in counts for value in row),
    )


async def set_last_used_from(
    tx: Transaction, key_id: int, ip: str | None, agent: str | None
) -> None:
    await tx.execute(
        "UPDATE api_keys SET last_used_ip = $2, last_used_user_agent = $3 WHERE id = $1",
        key_id,
        ip,
        agent,
    )


async def list_requests(
    db: Queries, key_id: int, up_to: int, limit: int, status: int | None, code: str | None
) -> list[Row]:
    """A page of the key's log, newest first, of one status or code if given."""
    where = ["api_key_id = $1", "id <= $2"]
    args: list[Any] = [key_id, up_to, limit]
    if status is not None:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if code is not None:
        args.append(code)
        where.append(f"code = ${len(args)}")
    return await db.fetch(
        f"""SELECT {REQUEST} FROM key_requests WHERE {" AND ".join(where)}
            ORDER BY id DESC LIMIT $3""",
        *args,
    )


async def outcomes_by_day(db: Queries, key_id: int, first: dt.date, last: dt.date) -> list[Row]:
    return await db.fetch(
        """SELECT day, code, requests FROM key_daily_outcomes
           WHERE api_key_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, code""",
        key_id,
        first,
        last,
    )


async def prune(tx: Transaction, before: dt.datetime) -> int:
    """Delete the log's lines from before ``before``: on PostgreSQL those of the default
    partition only (``partitions.maintain`` drops the days' partitions whole)."""
    table = "key_requests_default" if tx.dialect == "postgresql" else "key_requests"
    return await tx.execute(f"DELETE FROM {table} WHERE at < $1", before)


async def seen_from(tx: Transaction, rows: Sequence[tuple[Any, ...]], now: dt.datetime) -> None:
    """Record each (key id, address, first, last) use; an address unseen for 30 days starts
    over as new."""
    if not rows:
        return
    await tx.execute(
        f"""INSERT INTO key_ips AS i (api_key_id, ip, first_seen, last_seen)
            VALUES {value_rows(len(rows), ("", "", "::timestamptz", "::timestamptz"))}
            ON CONFLICT (api_key_id, ip) DO UPDATE SET
                first_seen = CASE WHEN i.last_seen < ${len(rows) * 4 + 1}::timestamptz
                                  THEN excluded.first_seen ELSE i.first_seen END,
                last_seen = excluded.last_seen""",
        *(value for row in rows for value in row),
        now - dt.timedelta(days=30),
    )


async def add_minutes(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add (key id, minute, requests, failed) to the last minutes' outcomes."""
    await tx.execute(
        f"""INSERT INTO key_minute_outcomes AS m (api_key_id, minute, requests, failed)
            VALUES {value_rows(len(rows), ("", "::bigint", "", ""))}
            ON CONFLICT (api_key_id, minute) DO UPDATE SET
                requests = m.requests + excluded.requests,
                failed = m.failed + excluded.failed""",
        *(value for row in rows for value in row),
    )


async def refused(
    tx: Transaction, key_id: int, first: dt.datetime, last: dt.datetime, now: dt.datetime
) -> None:
    """The key was tried while revoked or expired, from ``first`` to ``last``."""
    await tx.execute(
        """UPDATE api_keys SET
               refused_since = CASE WHEN last_refused_at IS NULL OR last_refused_at < $4
                                    THEN $2 ELSE refused_since END,
               last_refused_at = $3
           WHERE id = $1""",
        key_id,
        first,
        last,
        now - dt.timedelta(hours=24),
    )


async def prune_recent(tx: Transaction, before_minute: int, unseen_since: dt.datetime) -> None:
    await tx.execute("DELETE FROM key_minute_outcomes WHERE minute < $1", before_minute)
    await tx.execute("DELETE FROM key_ips WHERE last_seen < $1", unseen_since)


async def recent_outcomes(db: Queries, key_ids: Sequence[int], since_minute: int) -> list[Row]:
    """Each key's ``requests`` and ``failed`` (401/403) since ``since_minute``, and its
    ``first`` minute in that time."""
    if not key_ids:
        return []
    return await db.fetch(
        f"""SELECT api_key_id, sum(requests) AS requests, sum(failed) AS failed,
                   min(minute) AS first
            FROM key_minute_outcomes
            WHERE minute >= $1 AND api_key_id IN ({placeholders(2, len(key_ids))})
            GROUP BY api_key_id""",
        since_minute,
        *key_ids,
    )


async def new_addresses(db: Queries, key_ids: Sequence[int], since: dt.datetime) -> list[Row]:
    """Addresses first seen with each key since ``since``, when the key was used from
    another address before."""
    if not key_ids:
        return []
    return await db.fetch(
        f"""SELECT i.api_key_id, i.ip, i.first_seen FROM key_ips AS i
            WHERE i.first_seen >= $1 AND i.api_key_id IN ({placeholders(2, len(key_ids))})
              AND EXISTS (SELECT 1 FROM key_ips AS o
                          WHERE o.api_key_id = i.api_key_id AND o.first_seen < i.first_seen)
            ORDER BY i.api_key_id, i.first_seen""",
        since,
        *key_ids,
    )
