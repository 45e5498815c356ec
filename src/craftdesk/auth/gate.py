"""Where a key is validated and metered: one statement (or transaction) for a whole batch.

Requests that arrive while a batch is in flight queue up and go together in the next one
(group commit). For each batch the gate:

1. looks up every key it holds, with its workspace and its creator's current role;
2. checks each key's hash, revocation, expiry and workspace;
3. meters: under the lock of each workspace's usage row, admits requests up to the quota and
   counts them per workspace, key, period and day (``craftdesk.metering.counter``).

Only once the counts are committed are the waiting requests answered, so a response never
runs ahead of its count, and nothing is cached: a revoke committed by any process applies to
the next request.

Every key-authenticated request waits on this, so it talks to the driver directly with fixed
SQL. PostgreSQL: one round trip per batch, a single statement (so its own transaction) that
does all three steps; the gate then takes the same decisions again in Python, comparing each
hash in constant time, to answer each request, and checks that they agree with what was
counted. SQLite: one ``BEGIN IMMEDIATE`` transaction on the gate's own connection, run on the
event loop: the lookup, then the checks in Python, then the metering statements.
"""

import asyncio
import datetime as dt
import functools
import hmac
import ipaddress
import json
import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import asyncpg

from craftdesk.auth.permissions import scope_access
from craftdesk.auth.principal import KeyRate, Principal, Quota
from craftdesk.clients import Network, parse_network
from craftdesk.config import Settings
from craftdesk.db import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    Unavailable,
    configure_sqlite_connection,
    utcnow,
)
from craftdesk.errors import (
    DatabaseUnavailable,
    Forbidden,
    ProblemError,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
)
from craftdesk.metering import counter
from craftdesk.metering.counter import Demand
from craftdesk.metering.periods import BillingPeriod
from craftdesk.metering.usage import quota_limit
from craftdesk.workspaces.models import PLANS

logger = logging.getLogger("craftdesk.auth")

MAX_BATCH = 256
LAST_USED_RESOLUTION = dt.timedelta(seconds=30)

_LOOKUP = """
SELECT k.id, k.public_id, k.name, k.key_hash, k.scope, k.permissions,
       k.project_ids, k.expires_at, k.revoked_at IS NOT NULL, k.last_used_at,
       k.created_by_id, m.role, w.id, w.slug, w.name, w.plan, w.quota_override,
       w.billing_anchor, k.allowed_ips, k.rate_limit_requests, k.rate_limit_seconds
FROM api_keys AS k
JOIN workspaces AS w ON w.id = k.workspace_id
LEFT JOIN memberships AS m ON m.id = k.membership_id
WHERE k.public_id {matches}
"""


class KeyRow(NamedTuple):
    """A key as the lookup finds it, with its workspace and its creator's current role."""

    id: int
    public_id: str
    name: str
    key_hash: bytes
    scope: str
    permissions: dict[str, str] | None
    project_ids: list[int] | None
    expires_at: dt.datetime | None
    revoked: bool
    last_used_at: dt.datetime | None
    created_by_id: int
    role: str | None
    workspace_id: int
    slug: str
    workspace_name: str
    plan: str
    quota_override: int | None
    billing_anchor: dt.datetime
    allowed_ips: str | None  # JSON text
    rate_limit_requests: int | None
    rate_limit_seconds: int | None

    def window_start(self, epoch: int) -> int | None:
        """The start of the rate-limit window holding ``epoch`` (None: no rate limit)."""
        seconds = self.rate_limit_seconds
        return None if seconds is None else epoch // seconds * seconds


_KEY_COLUMNS = len(KeyRow._fields)


@dataclass(slots=True)
class _Attempt:
    public_id: str
    key_hash: bytes
    workspace_slug: str | None
    client_ip: str | None
    future: asyncio.Future[Principal] = field(repr=False)

    def resolve(self, outcome: Principal | ProblemError) -> None:
        if self.future.done():  # the client went away
            return
        if isinstance(outcome, ProblemError):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


def _rejection(row: KeyRow | None, attempt: _Attempt, now: dt.datetime) -> ProblemError | None:
    if row is None or not hmac.compare_digest(row.key_hash, attempt.key_hash):
        return Unauthorized(
            "invalid_key",
            "This API key is not valid. Check that you copied it whole, "
            "or generate a new key in Settings → Integrations → API Keys.",
        )
    if row.revoked or row.role is None:
        return Unauthorized(
            "key_revoked",
            "This API key has been revoked. Generate a new key and update "
            "the integrations that use it.",
        )
    if row.expires_at is not None and row.expires_at <= now:
        return Unauthorized(
            "key_expired", "This API key has expired. Use its replacement or generate a new key."
        )
    if attempt.workspace_slug is not None and attempt.workspace_slug != row.slug:
        return Unauthorized(
            "workspace_mismatch",
            "This API key belongs to another workspace than the one "
            "named in the CraftDesk-Workspace header. Use a key of that workspace.",
        )
    if row.scope == "custom" and row.plan != "business":
        return Forbidden(
            "Custom-scope keys work on the Business plan only. Upgrade the workspace, "
            "or use a full or read-only key.",
            code="plan_required",
        )
    if row.allowed_ips is not None and not _allowed(row.allowed_ips, attempt.client_ip):
        return Forbidden(
            f"This API key may not be used from {attempt.client_ip or 'an unknown address'}: "
            "it is limited to its allowed IP ranges. Call from one of them, or change the "
            "key's allowed IPs in Settings → Integrations → API Keys.",
            code="ip_not_allowed",
        )
    return None


def _allowed(allowed_ips: str, client_ip: str | None) -> bool:
    if client_ip is None:
        return False
    address = ipaddress.ip_address(client_ip)  # as craftdesk.clients wrote it
    return any(address in network for network in _networks(allowed_ips))


@functools.lru_cache(maxsize=4096)
def _networks(allowed_ips: str) -> tuple[Network, ...]:
    """A key's allowed ranges, parsed once per distinct list (the column's JSON text)."""
    return tuple(parse_network(cidr) for cidr in json.loads(allowed_ips))


def _internal_error() -> ProblemError:
    return ProblemError("Something went wrong on our side. Retry later.")


class _Batch:
    """One batch's decisions, apart from the database: whom to refuse, whom to admit.

    Each request is decided on its own: a key row that cannot be read or checked fails its
    own requests (500, not counted), never the rest of the batch. In order: the checks
    (``check``), then each key's own rate limit (``limit``), then each workspace's quota
    (``admit``); a request refused by its key's rate limit is not counted against the quota.
    """

    def __init__(self, attempts: list[_Attempt], settings: Settings):
        self.attempts = attempts
        self.now = utcnow()
        self.epoch = int(self.now.timestamp())
        self.outcomes: list[tuple[_Attempt, Principal | ProblemError]] = []
        self._settings = settings
        self._groups: dict[int, list[_Accepted]] = {}
        self._limited: dict[int, list[_Accepted]] = {}
        self._demands: dict[int, Demand] = {}

    def check(self, found: Mapping[str, Any], decode: Callable[[Any], KeyRow]) -> None:
        """Reject what fails the checks. ``found`` holds the database's row of each key
        found, which ``decode`` reads."""
        rows: dict[str, KeyRow | None] = {}
        groups: dict[int, list[_Accepted]] = defaultdict(list)
        for attempt in self.attempts:
            try:
                if attempt.public_id not in rows:
                    raw = found.get(attempt.public_id)
                    rows[attempt.public_id] = None if raw is None else decode(raw)
                row = rows[attempt.public_id]
                rejection = _rejection(row, attempt, self.now)
                if rejection is None:
                    assert row is not None
                    groups[row.workspace_id].append(_Accepted(attempt, row, _principal(row)))
                else:
                    rejection.key_id = None if row is None else row.id
                    self.outcomes.append((attempt, rejection))
            except Exception as exc:
                logger.error(
                    "key gate: cannot check key %s (%s: %s)",
                    attempt.public_id,
                    type(exc).__name__,
                    exc,
                )
                self.outcomes.append((attempt, _internal_error()))
        self._groups = groups

    @property
    def rate_windows(self) -> dict[int, int]:
        """The current window of each key with a rate limit, by key id."""
        return {
            accepted.row.id: window
            for group in self._groups.values()
            for accepted in group
            if (window := accepted.row.window_start(self.epoch)) is not None
        }

    def limit(self, window_used: Mapping[int, int]) -> list[Demand]:
        """Hold each key with a rate limit to it, given what its window admitted before
        (absent: nothing); what remains asks, per workspace, to be admitted."""
        taken: Counter[int] = Counter()
        for workspace_id in sorted(self._groups):
            passed: list[_Accepted] = []
            limited: list[_Accepted] = []
            for accepted in self._groups[workspace_id]:
                row = accepted.row
                if row.rate_limit_requests is None or row.rate_limit_seconds is None:
                    passed.append(accepted)
                    continue
                used = window_used.get(row.id, 0) + taken[row.id]
                rate = KeyRate(
                    row.rate_limit_requests,
                    row.rate_limit_seconds,
                    min(used + 1, row.rate_limit_requests),
                    row.window_start(self.epoch) or 0,
                )
                if used < row.rate_limit_requests:
                    taken[row.id] += 1
                    passed.append(accepted._replace(rate=rate))
                else:
                    limited.append(accepted._replace(rate=rate))
            first = (passed or limited)[0].row
            self._groups[workspace_id] = passed
            self._limited[workspace_id] = limited
            self._demands[workspace_id] = Demand(
                workspace_id=workspace_id,
                period=BillingPeriod.containing(first.billing_anchor, self.now),
                limit=quota_limit(self._settings, first.plan, first.quota_override),
                key_ids=[accepted.row.id for accepted in passed],
            )
        return list(self._demands.values())

    def fail(self, workspace_id: int) -> None:
        """Answer a workspace's requests with 500 instead of admitting them."""
        for accepted in self._groups.pop(workspace_id) + self._limited.pop(workspace_id):
            self.outcomes.append((accepted.attempt, _internal_error()))
        del self._demands[workspace_id]

    @property
    def stale_key_ids(self) -> list[int]:
        """Keys whose ``last_used_at`` is worth updating (it may be coarse)."""
        return sorted(
            {
                accepted.row.id
                for group in self._groups.values()
                for accepted in group
                if (last := accepted.row.last_used_at) is None
                or self.now - last >= LAST_USED_RESOLUTION
            }
        )

    def admit(self, used: Mapping[int, int]) -> None:
        """Admit the first requests of each workspace up to its quota, given its prior count;
        answer those its keys' rate limits refused."""
        for workspace_id, group in self._groups.items():
            demand = self._demands[workspace_id]
            before = used[workspace_id]
            allowed = demand.admitted(before)
            for position, accepted in enumerate(group):
                if position < allowed:
                    quota = Quota(demand.limit, before + position + 1, demand.period, accepted.rate)
                    self.outcomes.append(
                        (accepted.attempt, accepted.principal._replace(quota=quota))
                    )
                else:
                    quota = Quota(
                        demand.limit, max(before, demand.limit), demand.period, accepted.rate
                    )
                    refusal = _quota_exceeded(quota, self.now)
                    refusal.key_id = accepted.row.id
                    self.outcomes.append((accepted.attempt, refusal))
            after = before + allowed
            for accepted in self._limited[workspace_id]:
                quota = Quota(demand.limit, after, demand.period, accepted.rate)
                refusal = _rate_limited(quota, self.now)
                refusal.key_id = accepted.row.id
                self.outcomes.append((accepted.attempt, refusal))


class _Accepted(NamedTuple):
    """A request whose key passed the checks, with the key's rate-limit state once known."""

    attempt: _Attempt
    row: KeyRow
    principal: Principal
    rate: KeyRate | None = None


class _PostgresStore:
    """One statement per batch, on a connection the gate keeps.

    The connection is taken from the database's pool once. When it breaks (or a batch
    times out), it is discarded along with the pool's idle connections, so that every route
    reconnects; the next batch takes a fresh one. An error from PostgreSQL itself leaves the
    connection in use.
    """

    def __init__(self, db: PostgresDatabase, settings: Settings):
        self._pool = db.pool
        self._timeout = settings.db_timeout_seconds
        self._plan_quotas = {plan: settings.plan_quota(plan) for plan in PLANS}
        self._driver: asyncpg.Connection | None = None

    async def process(self, batch: _Batch) -> None:
        async with asyncio.timeout(self._timeout):
            if self._driver is None:
                self._driver = await self._pool.acquire()
            try:
                records = await counter.admit_postgres(
                    self._driver,
                    [
                        (a.public_id, a.key_hash, _text(a.workspace_slug), a.client_ip)
                        for a in batch.attempts
                    ],
                    batch.now,
                    self._plan_quotas,
                    batch.now - LAST_USED_RESOLUTION,
                )
            except BaseException as exc:
                if isinstance(exc, asyncpg.PostgresError) and not isinstance(
                    exc, asyncpg.PostgresConnectionError
                ):
                    raise
                await self.close(invalidate=True)
                self._pool.expire_connections()
                raise
        batch.check({record["public_id"]: record for record in records}, _postgres_row)
        window_used = {
            record["id"]: record["window_used"]
            for record in records
            if record["window_used"] is not None
        }
        demands = {demand.workspace_id: demand for demand in batch.limit(window_used)}
        metered = {record["workspace_id"]: record for record in records}
        counted: dict[int, list[Any]] = defaultdict(list)
        for record in records:
            if record["admitted"] is not None:
                counted[record["workspace_id"]].append(record)
        used = {}
        for workspace_id in sorted(demands.keys() | counted.keys()):
            # The statement checked and counted; this is the same decision, taken again
            # to answer each request (the hash compared in constant time). A workspace whose
            # requests cannot be answered as counted gets its count back, and a 500 each.
            demand, record = demands.get(workspace_id), metered[workspace_id]
            if demand is not None and (
                record["period_start"],
                record["quota"],
                record["wanted"],
            ) == (demand.period.start, demand.limit, len(demand.key_ids)):
                used[workspace_id] = record["used"]
                continue
            logger.error("key gate: the statement counted otherwise in workspace %d", workspace_id)
            if counted[workspace_id]:
                await counter.refund_postgres(self._driver, counted[workspace_id], batch.now)
            if demand is not None:
                batch.fail(workspace_id)
        batch.admit(used)

    async def close(self, *, invalidate: bool = False) -> None:
        connection, self._driver = self._driver, None
        if connection is not None:
            if invalidate:
                connection.terminate()
            await self._pool.release(connection)


def _text(value: str | None) -> str | None:
    """``value`` as PostgreSQL text, which cannot hold NUL. A header is checked against a
    slug, which has none: any stand-in keeps it a mismatch, for that request alone."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _key_row(values: list[Any]) -> KeyRow:
    """A lookup row whose JSON columns (permissions, project_ids) came back as text."""
    for index in (5, 6):
        if values[index] is not None:
            values[index] = json.loads(values[index])
    return KeyRow(*values)


_DATETIME_COLUMNS = (7, 9, 17)  # expires_at, last_used_at, billing_anchor


def _postgres_row(record: Any) -> KeyRow:
    values = list(record[:_KEY_COLUMNS])
    for index in _DATETIME_COLUMNS:
        # asyncpg reads PostgreSQL's 'infinity' as a naive datetime.max.
        if values[index] is not None and values[index].tzinfo is None:
            values[index] = values[index].replace(tzinfo=dt.UTC)
    return _key_row(values)


class _SqliteStore:
    """The whole batch as one ``BEGIN IMMEDIATE`` transaction, run right on the event loop.

    SQLite is a library in this process: a batch is some tens of microseconds of CPU, less
    than handing it to a thread costs (each of a thread's calls into SQLite must then win the
    GIL back from the busy event loop, which can take 5 ms each). What could block is kept
    off the loop: the write lock is only tried (busy timeout 0) and retried after short
    sleeps until the database timeout, and the gate's connection leaves checkpoints (copying
    the WAL into the database file, with an fsync) to the database's background thread.
    """

    RETRY_SECONDS = 0.001

    def __init__(self, db: SqliteDatabase, settings: Settings):
        self._db = db
        self._timeout = settings.db_timeout_seconds
        self._connection: sqlite3.Connection | None = None

    async def process(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while not self._try(batch):
            if loop.time() >= deadline:
                raise TimeoutError("the SQLite write lock stayed taken")
            await asyncio.sleep(self.RETRY_SECONDS)
        self._db.checkpoint_soon()

    def _try(self, batch: _Batch) -> bool:
        """Run the batch's transaction; ``False`` if another connection holds the lock."""
        try:
            connection = self._connection or self._connect()
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                return False
            raise
        cursor = connection.cursor()
        try:
            public_ids = sorted({attempt.public_id for attempt in batch.attempts})
            cursor.execute(_sqlite_lookup(len(public_ids)), public_ids)
            batch.check({row[1]: row for row in cursor.fetchall()}, _sqlite_row)
            windows = batch.rate_windows
            demands = batch.limit(counter.window_counts_sqlite(cursor, windows))
            used = (
                counter.meter_sqlite(cursor, demands, batch.stale_key_ids, batch.now, windows)
                if demands
                else {}
            )
            cursor.execute("COMMIT")
        except BaseException:
            try:
                connection.rollback()
            except sqlite3.Error:
                self._connection = None
                connection.close()
            raise
        finally:
            cursor.close()
        batch.admit(used)
        return True

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._db.path, timeout=0, isolation_level=None)
        try:
            configure_sqlite_connection(connection)
            connection.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@functools.cache
def _sqlite_lookup(count: int) -> str:
    """The lookup of ``count`` keys (one text per batch size, so SQLite caches each)."""
    return _LOOKUP.format(matches=f"IN ({', '.join('?' * count)})")


def _parse_sqlite_datetime(value: str | None) -> dt.datetime | None:
    """A datetime as SQLAlchemy stores ``UTCDateTime`` in SQLite: naive UTC text."""
    return None if value is None else dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _sqlite_row(row: tuple[Any, ...]) -> KeyRow:
    values = list(row)
    for index in _DATETIME_COLUMNS:
        values[index] = _parse_sqlite_datetime(values[index])
    return _key_row(values)


class KeyGate:
    def __init__(self, db: Database, settings: Settings):
        self._settings = settings
        self._store: _PostgresStore | _SqliteStore = (
            _SqliteStore(db, settings)
            if isinstance(db, SqliteDatabase)
            else _PostgresStore(db, settings)  # type: ignore[arg-type]
        )
        self._pending: list[_Attempt] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-gate")

    async def stop(self) -> None:
        """Answer every request already queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._store.close()

    async def admit(
        self,
        public_id: str,
        key_hash: bytes,
        workspace_slug: str | None,
        client_ip: str | None,
    ) -> Principal:
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending.append(_Attempt(public_id, key_hash, workspace_slug, client_ip, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if isinstance(self._store, _SqliteStore):
                # Its batch runs without yielding: first let the requests the event loop has
                # already read reach the queue, so that they join this batch.
                await asyncio.sleep(0)
            self._wakeup.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            attempts, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if self._pending or self._closing:
                self._wakeup.set()
            batch = _Batch(attempts, self._settings)
            try:
                await self._store.process(batch)
            except (
                Unavailable,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                sqlite3.Error,
                OSError,
                TimeoutError,
            ) as exc:
                logger.warning("key gate: database unavailable (%s)", type(exc).__name__)
                batch.outcomes = [(attempt, DatabaseUnavailable()) for attempt in attempts]
            except Exception:
                logger.exception("key gate: batch failed")
                batch.outcomes = [(attempt, _internal_error()) for attempt in attempts]
            for attempt, outcome in batch.outcomes:
                attempt.resolve(outcome)


_UNCOUNTED = Quota(0, 0, BillingPeriod(dt.datetime.min, dt.datetime.min))


def _principal(row: KeyRow) -> Principal:
    """The principal of an accepted key, before it is admitted (and given its quota)."""
    assert row.role is not None
    return Principal(
        key_id=row.id,
        public_id=row.public_id,
        key_name=row.name,
        scope=row.scope,
        access=scope_access(row.scope, row.permissions),
        project_ids=row.project_ids,
        expires_at=row.expires_at,
        user_id=row.created_by_id,
        role=row.role,
        workspace_id=row.workspace_id,
        workspace_slug=row.slug,
        workspace_name=row.workspace_name,
        plan=row.plan,
        quota=_UNCOUNTED,
    )


def _rate_limited(quota: Quota, now: dt.datetime) -> QuotaExceeded:
    assert quota.key_rate is not None
    rate = quota.key_rate
    retry_after = rate.seconds_left(now)
    return _too_many(
        RateLimited,
        f"This API key is limited to {rate.limit} requests per {rate.seconds} s, and used "
        f"them all. Retry in {retry_after} s, or raise the key's rate limit in Settings → "
        "Integrations → API Keys. (This request did not count against the quota.)",
        retry_after,
        quota,
    )


def _quota_exceeded(quota: Quota, now: dt.datetime) -> QuotaExceeded:
    retry_after = quota.period.seconds_left(now)
    return _too_many(
        QuotaExceeded,
        f"This workspace used all {quota.limit} requests of its billing period. Wait until "
        f"the period resets at {quota.period.end.isoformat()} ({retry_after} s), upgrade the "
        "plan, or make fewer calls.",
        retry_after,
        quota,
    )


def _too_many(
    kind: type[QuotaExceeded], detail: str, retry_after: int, quota: Quota
) -> QuotaExceeded:
    """A 429 with ``Retry-After`` and the quota state its rate-limit headers show."""
    error = kind(detail, headers={"Retry-After": str(retry_after)})
    error.quota = quota
    return error
