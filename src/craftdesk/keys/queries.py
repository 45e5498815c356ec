"""The SQL of API keys (the dashboard's and the CLI's; the key gate has its own)."""

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from craftdesk.activity.queries import AlertWindows
from craftdesk.db import Queries, Row, Transaction, placeholders

KEY = """id, public_id, workspace_id, created_by_id, membership_id, name, last_four, scope,
         permissions, project_ids, expires_at, created_at, last_used_at, revoked_at,
         rotated_from_id, revoked_reason, allowed_ips, rate_limit_requests, rate_limit_seconds,
         leaked_url, last_used_ip, last_used_user_agent, last_refused_at, refused_since"""


class ApiKeyRow(NamedTuple):
    """A key as stored, without its hash."""

    id: int
    public_id: str
    workspace_id: int
    created_by_id: int
    membership_id: int | None
    name: str
    last_four: str
    scope: str
    permissions: dict[str, Any] | None
    project_ids: list[int] | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rotated_from_id: int | None
    revoked_reason: str | None
    allowed_ips: list[str] | None
    rate_limit_requests: int | None
    rate_limit_seconds: int | None
    leaked_url: str | None
    last_used_ip: str | None
    last_used_user_agent: str | None
    last_refused_at: dt.datetime | None
    refused_since: dt.datetime | None

    @classmethod
    def of(cls, row: Iterable[Any]) -> "ApiKeyRow":
        values = list(row)
        for index in (8, 9, 16):  # permissions, project_ids, allowed_ips: JSON text
            if values[index] is not None:
                values[index] = json.loads(values[index])
        for index in (10, 12, 13):  # asyncpg reads 'infinity' as a naive datetime.max
            if values[index] is not None and values[index].tzinfo is None:
                values[index] = values[index].replace(tzinfo=dt.UTC)
        return cls._make(values)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


async def insert_key(
    tx: Transaction,
    *,
    public_id: str,
    workspace_id: int,
    created_by_id: int,
    membership_id: int,
    name: str,
    key_hash: bytes,
    last_four: str,
    scope: str,
    permissions: dict[str, Any] | None,
    project_ids: list[int] | None,
    expires_at: dt.datetime | None,
    created_at: dt.datetime,
    rotated_from_id: int | None,
    allowed_ips: list[str] | None,
    rate_limit: tuple[int, int] | None,
) -> ApiKeyRow:
    limit, seconds = rate_limit if rate_limit is not None else (None, None)
    row = await tx.write(
        f"""INSERT INTO api_keys (public_id, workspace_id, created_by_id, membership_id, name,
                key_hash, last_four, scope, permissions, project_ids, expires_at, created_at,
                rotated_from_id, allowed_ips, rate_limit_requests, rate_limit_seconds)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11, $12, $13,
                    $14::json, $15, $16)
            RETURNING {KEY}""",
        public_id,
        workspace_id,
        created_by_id,
        membership_id,
        name,
        key_hash,
        last_four,
        scope,
        _json(permissions),
        _json(project_ids),
        expires_at,
        created_at,
        rotated_from_id,
        _json(allowed_ips),
        limit,
        seconds,
    )
    assert row is not None
    return ApiKeyRow.of(row)


async def get_key(db: Queries, workspace_id: int, key_id: int) -> ApiKeyRow | None:
    row = await db.fetchrow(
        f"SELECT {KEY} FROM api_keys WHERE id = $1 AND workspace_id = $2", key_id, workspace_id
    )
    return None if row is None else ApiKeyRow.of(row)


async def lock_key(tx: Transaction, workspace_id: int, key_id: int) -> ApiKeyRow | None:
    """The key, locked for the rest of the transaction (on SQLite the transaction holds the
    database's write lock already)."""
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    row = await tx.fetchrow(
        f"SELECT {KEY} FROM api_keys WHERE id = $1 AND workspace_id = $2{lock}",
        key_id,
        workspace_id,
    )
    return None if row is None else ApiKeyRow.of(row)


async def successor_id(db: Queries, key_id: int) -> int | None:
    value: int | None = await db.fetchval(
        "SELECT id FROM api_keys WHERE rotated_from_id = $1", key_id
    )
    return value


async def set_revoked(
    tx: Transaction, key_id: int, now: dt.datetime, reason: str, leaked_url: str | None = None
) -> bool:
    """Revoke the key unless it is already: returns whether this revoked it."""
    return (
        await tx.execute(
            """UPDATE api_keys SET revoked_at = $2, revoked_reason = $3, leaked_url = $4
               WHERE id = $1 AND revoked_at IS NULL""",
            key_id,
            now,
            reason,
            leaked_url,
        )
        > 0
    )


async def keys_by_public_id(db: Queries, public_ids: list[str]) -> list[tuple[ApiKeyRow, bytes]]:
    """The keys of these public ids (at most a few thousand), each with its stored hash:
    for matching keys reported found in public (``craftdesk.keys.scanning``)."""
    if not public_ids:
        return []
    rows = await db.fetch(
        f"""SELECT {KEY}, key_hash FROM api_keys
            WHERE public_id IN ({placeholders(1, len(public_ids))})""",
        *public_ids,
    )
    found = []
    for row in rows:
        values = tuple(row)
        found.append((ApiKeyRow.of(values[:-1]), bytes(values[-1])))
    return found


async def set_expiry(tx: Transaction, key_id: int, expires_at: dt.datetime) -> None:
    await tx.execute("UPDATE api_keys SET expires_at = $2 WHERE id = $1", key_id, expires_at)


async def set_controls(
    tx: Transaction,
    key_id: int,
    allowed_ips: list[str] | None,
    rate_limit_requests: int | None,
    rate_limit_seconds: int | None,
) -> None:
    """Set where the key may be used from and its rate limit (``None``: anywhere, none)."""
    await tx.execute(
        """UPDATE api_keys SET allowed_ips = $2::json, rate_limit_requests = $3,
                               rate_limit_seconds = $4
           WHERE id = $1""",
        key_id,
        _json(allowed_ips),
        rate_limit_requests,
        rate_limit_seconds,
    )


async def set_name(tx: Transaction, key_id: int, name: str) -> None:
    await tx.execute("UPDATE api_keys SET name = $2 WHERE id = $1", key_id, name)


# A key as the dashboard lists it: with its creator's email, its count this period, and two
# hints for its alerts, so that a page reads the activity of the few keys hinted only
# (``craftdesk.activity.alerts``): a refused request since the ``failing`` window's first
# minute ($3), and the ``new_ip`` condition itself (an address first seen since $4, after
# another). Each hint is an index seek or two (``ix_key_minute_outcomes_refused``,
# ``ix_key_ips_api_key_id_first_seen``), however busy the key.
_LISTED = f"""SELECT {", ".join("k." + c.strip() for c in KEY.split(","))}, u.email,
                     COALESCE(ku.requests, 0),
                     EXISTS (SELECT 1 FROM key_minute_outcomes AS m
                             WHERE m.api_key_id = k.id AND m.minute >= $3 AND m.failed > 0),
                     EXISTS (SELECT 1 FROM key_ips AS i
                             WHERE i.api_key_id = k.id AND i.first_seen >= $4
                               AND EXISTS (SELECT 1 FROM key_ips AS o
                                           WHERE o.api_key_id = k.id
                                             AND o.first_seen < i.first_seen))
              FROM api_keys AS k
              JOIN users AS u ON u.id = k.created_by_id
              LEFT JOIN key_usage AS ku ON ku.api_key_id = k.id AND ku.period_start = $2
              WHERE k.workspace_id = $1"""
_PAGE = f"{_LISTED} AND k.id <= $5 ORDER BY k.id DESC LIMIT $6"
_OWN_PAGE = f"{_LISTED} AND k.id <= $5 AND k.created_by_id = $7 ORDER BY k.id DESC LIMIT $6"
_ONE = f"{_LISTED} AND k.id = $5"


class ListedKey(NamedTuple):
    key: ApiKeyRow
    creator_email: str
    requests_this_period: int
    refused_lately: bool  # a request refused (401 or 403) in the ``failing`` window
    new_address: bool  # used from an address that makes a ``new_ip`` alert

    @classmethod
    def of(cls, row: Row) -> "ListedKey":
        *key, email, requests, refused, new = row
        return cls(ApiKeyRow.of(key), email, requests, bool(refused), bool(new))


async def list_keys(
    db: Queries,
    workspace_id: int,
    period_start: dt.datetime,
    windows: AlertWindows,
    *,
    created_by_id: int | None,
    up_to: int,
    limit: int,
) -> list[ListedKey]:
    """A page of the workspace's keys, newest first (only ``created_by_id``'s, if given)."""
    rows = await db.fetch(
        _PAGE if created_by_id is None else _OWN_PAGE,
        workspace_id,
        period_start,
        *windows,
        up_to,
        limit,
        *(() if created_by_id is None else (created_by_id,)),
    )
    return [ListedKey.of(row) for row in rows]


async def listed_key(
    db: Queries,
    workspace_id: int,
    period_start: dt.datetime,
    windows: AlertWindows,
    key_id: int,
) -> ListedKey | None:
    row = await db.fetchrow(_ONE, workspace_id, period_start, *windows, key_id)
    return None if row is None else ListedKey.of(row)
