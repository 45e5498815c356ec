"""The SQL of the key request log and the outcomes per day."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from craftdesk.db import Queries, Row, Transaction

REQUEST = "id, at, method, path, status, code, ip, user_agent, request_id, duration_ms"
_COLUMNS = 10  # api_key_id and REQUEST's columns but id
# Rows per INSERT: each takes 10 parameters, and SQLite allows 32,766 in a statement.
CHUNK = 1000


async def insert_requests(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add ``rows`` (api_key_id, at, method, path, status, code, ip, user_agent, request_id,
    duration_ms) to the log, a thousand per statement."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        values = ", ".join(
            "(" + ", ".join(f"${n * _COLUMNS + c + 1}" for c in range(_COLUMNS)) + ")"
            for n in range(len(chunk))
        )
        await tx.execute(
            f"""INSERT INTO key_requests (api_key_id, at, method, path, status, code, ip,
                    user_agent, request_id, duration_ms) VALUES {values}""",
            *(value for row in chunk for value in row),
        )


async def add_outcomes(tx: Transaction, counts: Sequence[tuple[int, dt.date, str, int]]) -> None:
    """Add ``counts`` (api_key_id, day, code, requests) to the outcomes per day."""
    for start in range(0, len(counts), CHUNK):
        chunk = counts[start : start + CHUNK]
        values = ", ".join(
            f"(${n * 4 + 1}, ${n * 4 + 2}::date, ${n * 4 + 3}, ${n * 4 + 4})"
            for n in range(len(chunk))
        )
        await tx.execute(
            f"""INSERT INTO key_daily_outcomes AS o (api_key_id, day, code, requests)
                VALUES {values}
                ON CONFLICT (api_key_id, day, code)
                DO UPDATE SET requests = o.requests + excluded.requests""",
            *(value for row in chunk for value in row),
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
    """Drop the log's lines from before ``before``."""
    return await tx.execute("DELETE FROM key_requests WHERE at < $1", before)
