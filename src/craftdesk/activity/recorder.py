"""The key request log, recorded off the request's path.

A request that presented an existing key leaves one line (its key, time, method, path,
status, code, client address, user agent, request id and duration) in an in-memory list as
it is answered: no database work on its path. A background task writes the list in one
transaction about once a second (``FLUSH_SECONDS``): the lines, the outcomes per key and day,
and each key's last address and user agent. So a line is visible within about a second, and
a crash loses at most the lines of the last second, never a quota count (the key gate counts
those in its own transaction before answering). Lines older than
``CRAFTDESK_ACTIVITY_RETENTION_DAYS`` are pruned by the same task, at start-up and once an
hour: deleted on SQLite; on PostgreSQL their days' partitions are dropped whole, and the days
ahead's created (``craftdesk.activity.partitions``).
"""

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from typing import Any

from craftdesk.activity import partitions, queries
from craftdesk.db import Database, utcnow

logger = logging.getLogger("craftdesk.activity")

FLUSH_SECONDS = 1.0
PRUNE_SECONDS = 3600.0
# Lines kept in memory while the database is unreachable; past it, the oldest are dropped.
MAX_PENDING = 100_000
USER_AGENT_LENGTH = 256
CHUNK_LINES = 250


class ActivityLog:
    def __init__(self, db: Database, retention_days: int):
        self._db = db
        self._retention = dt.timedelta(days=retention_days)
        self._pending: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def record(
        self,
        key_id: int,
        at: dt.datetime,
        method: str,
        path: str,
        status: int,
        code: str,
        ip: str | None,
        user_agent: str | None,
        request_id: str,
        duration_ms: float,
    ) -> None:
        if len(self._pending) >= MAX_PENDING:
            del self._pending[: MAX_PENDING // 10]
        agent = None if user_agent is None else user_agent[:USER_AGENT_LENGTH]
        self._pending.append(
            (key_id, at, method, path[:512], status, code, ip, agent, request_id, duration_ms)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-log")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()  # at once: on PostgreSQL, today's partition before any line
        while not self._stopping.is_set():
            if loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_SECONDS
                await self.prune()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._stopping.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending, ``CHUNK_LINES`` lines per transaction: on SQLite a
        transaction runs on the event loop, so each holds it a few milliseconds at most."""
        while self._pending:
            lines, self._pending = self._pending[:CHUNK_LINES], self._pending[CHUNK_LINES:]
            if not await self._write(lines):
                return
            await asyncio.sleep(0)  # let the requests waiting meanwhile go on

    async def _write(self, lines: list[tuple[Any, ...]]) -> bool:
        now = utcnow()
        outcomes: Counter[tuple[int, dt.date, str]] = Counter()
        minutes: dict[tuple[int, int], list[int]] = {}
        last_from: dict[int, tuple[str | None, str | None]] = {}
        addresses: dict[tuple[int, str], list[dt.datetime]] = {}
        refused: dict[int, list[dt.datetime]] = {}
        for key_id, at, _, _, status, code, ip, agent, _, _ in lines:
            outcomes[(key_id, at.date(), code)] += 1
            counts = minutes.setdefault((key_id, int(at.timestamp()) // 60), [0, 0])
            counts[0] += 1
            counts[1] += status in (401, 403)
            if status != 401:  # the key authenticated
                last_from[key_id] = (ip, agent)
                if ip is not None:
                    seen = addresses.setdefault((key_id, ip), [at, at])
                    seen[1] = at
            if code in ("key_revoked", "key_expired"):
                tried = refused.setdefault(key_id, [at, at])
                tried[1] = at
        try:
            async with self._db.transaction() as tx:
                await queries.insert_requests(tx, lines)
                await queries.add_outcomes(
                    tx, [(*key, count) for key, count in sorted(outcomes.items())]
                )
                await queries.add_minutes(
                    tx, [(*key, *counts) for key, counts in sorted(minutes.items())]
                )
                await queries.seen_from(
                    tx, [(*key, *seen) for key, seen in sorted(addresses.items())], now
                )
                for key_id, (ip, agent) in sorted(last_from.items()):
                    await queries.set_last_used_from(tx, key_id, ip, agent)
                for key_id, (first, last) in sorted(refused.items()):
                    await queries.refused(tx, key_id, first, last, now)
        except Exception as exc:  # kept for the next try
            logger.warning(
                "activity log: cannot write %d lines (%s)", len(lines), type(exc).__name__
            )
            self._pending[:0] = lines
            return False
        return True

    async def prune(self) -> None:
        now = utcnow()
        before = now - self._retention
        if self._db.dialect == "postgresql":
            try:
                await partitions.maintain(self._db, now, before)
            except Exception as exc:  # the default partition takes the lines meanwhile
                logger.warning("activity log: cannot maintain partitions (%s)", type(exc).__name__)
        try:
            async with self._db.transaction() as tx:
                await queries.prune(tx, before)
                await queries.prune_recent(
                    tx, int(now.timestamp()) // 60 - 120, now - dt.timedelta(days=31)
                )
        except Exception as exc:
            logger.warning("activity log: cannot prune (%s)", type(exc).__name__)
