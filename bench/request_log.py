"""The request log's costs, in process (no HTTP server, no wrk): its storage per million
lines, the cost of pruning a day of them, and its writer's CPU per line.

    .venv/bin/python bench/request_log.py [--db sqlite|postgresql|both] [--lines 1000000]

For each backend, on a fresh database (a SQLite file in a temporary folder, or a PostgreSQL
database dropped at the end), with 200 keys of one workspace:

1. storage: ``--lines`` realistic lines of one UTC day (mostly 200s on a few routes, each key
   from its own few addresses, browser and client user agents) written with the writer's own
   SQL (``queries.insert_requests``, 250 lines a transaction); then the table's and its
   indexes' size (PostgreSQL: ``pg_total_relation_size`` of every partition, after VACUUM
   ANALYZE; SQLite: ``dbstat``, and the file's growth);
2. pruning that day: PostgreSQL, the hourly task's ``partitions.maintain`` dropping its
   partition, against the previous design (``aec3bd74356d`` and before: one table, the same
   lines deleted by ``DELETE … WHERE at < cutoff`` on its index of ``at``, then the VACUUM
   that makes their space reusable), plus the migration's own time on those lines; SQLite,
   the DELETE of an hour's lines (what the hourly task deletes at that rate) and of the day;
3. the writer: ``--writer-lines`` lines through ``ActivityLog.record`` and ``flush`` (the
   lines, outcomes, minutes, addresses, last use): this process's CPU per line, and on
   PostgreSQL its server processes' too (from /proc).
"""

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from craftdesk.activity import partitions, queries  # noqa: E402
from craftdesk.activity.recorder import CHUNK_LINES, ActivityLog  # noqa: E402
from craftdesk.config import Settings  # noqa: E402
from craftdesk.db import Database  # noqa: E402
from craftdesk.keys.service import issue_key  # noqa: E402
from craftdesk.migrate import downgrade, upgrade  # noqa: E402
from craftdesk.schemas import MAX_ID  # noqa: E402
from craftdesk.workspaces.queries import membership_by_email  # noqa: E402
from craftdesk.workspaces.service import create_workspace  # noqa: E402

BEFORE_PARTITIONS = "aec3bd74356d"
DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PEPPER = "request-log-bench-pepper-0123456789abcdef"
AGENTS = [
    "python-httpx/0.28.1",
    "curl/8.5.0",
    "Go-http-client/2.0",
    "craftdesk-sync/2.3.1 (+https://github.com/example/craftdesk-sync)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
]
# (share, method, path, status, code): ``{n}`` a project id, ``{m}`` a task id.
ROUTES = [
    (40, "GET", "/v1/projects", 200, "ok"),
    (25, "GET", "/v1/projects/{n}/tasks", 200, "ok"),
    (10, "POST", "/v1/projects/{n}/tasks", 201, "ok"),
    (8, "PATCH", "/v1/projects/{n}/tasks/{m}", 200, "ok"),
    (8, "GET", "/v1/auth/key", 200, "ok"),
    (4, "GET", "/v1/projects/{n}", 404, "not_found"),
    (3, "POST", "/v1/projects", 422, "validation_error"),
    (1, "GET", "/v1/projects", 401, "invalid_key"),
    (1, "GET", "/v1/projects", 429, "quota_exceeded"),
]


def log(message: str) -> None:
    print(f"request_log: {message}", file=sys.stderr, flush=True)


def lines(
    key_ids: list[int], count: int, start: dt.datetime, span: dt.timedelta
) -> Iterator[tuple[Any, ...]]:
    """``count`` lines spread evenly over ``span`` from ``start``, in time order."""
    rng = random.Random(13)
    addresses = {key: [f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"] for key in key_ids}
    agents = {key: rng.choice(AGENTS) for key in key_ids}
    weights = [route[0] for route in ROUTES]
    step = span / count
    for n in range(count):
        key = rng.choice(key_ids)
        _, method, path, status, code = rng.choices(ROUTES, weights)[0]
        path = path.format(n=rng.randrange(1, 5000), m=rng.randrange(1, 100000))
        yield (
            key,
            start + n * step,
            method,
            path,
            status,
            code,
            rng.choice(addresses[key]),
            agents[key],
            uuid.UUID(int=rng.getrandbits(128)).hex,
            round(rng.lognormvariate(1.5, 0.8), 3),
        )


async def seed_keys(db: Database, settings: Settings, count: int = 200) -> list[int]:
    async with db.transaction() as tx:
        workspace = await create_workspace(
            tx, name="Bench", owner_email="o@example.com", owner_password="bench password"
        )
        owner = await membership_by_email(tx, workspace.id, "o@example.com")
        assert owner is not None
        for n in range(count):
            await issue_key(
                tx,
                pepper=settings.pepper,
                workspace_id=workspace.id,
                created_by_id=owner.user_id,
                membership_id=owner.id,
                name=f"key {n}",
                scope="full",
            )
    return [row[0] for row in await db.fetch("SELECT id FROM api_keys ORDER BY id")]


async def insert_day(db: Database, key_ids: list[int], count: int) -> float:
    """The day's lines through the writer's SQL; returns the seconds it took."""
    started = time.perf_counter()
    chunk: list[tuple[Any, ...]] = []
    for line in lines(key_ids, count, DAY, dt.timedelta(days=1)):
        chunk.append(line)
        if len(chunk) == CHUNK_LINES:
            async with db.transaction() as tx:
                await queries.insert_requests(tx, chunk)
            chunk = []
    if chunk:
        async with db.transaction() as tx:
            await queries.insert_requests(tx, chunk)
    return time.perf_counter() - started


async def timed(db: Database, sql: str, *args: Any) -> float:
    started = time.perf_counter()
    await db.execute(sql, *args)
    return time.perf_counter() - started


async def pg_sizes(db: Database) -> dict[str, int]:
    """Bytes of the log's heap and of each index, over every partition."""
    await db.execute("VACUUM ANALYZE key_requests")
    rows = await db.fetch(
        """WITH parts AS (
               SELECT c.oid FROM pg_class AS c WHERE c.relname = 'key_requests'
               UNION ALL SELECT inhrelid FROM pg_inherits
               WHERE inhparent = 'key_requests'::regclass)
           SELECT 'table' AS name, sum(pg_table_size(oid))::bigint AS bytes FROM parts
           UNION ALL
           SELECT coalesce(p.relname, c.relname), sum(pg_relation_size(i.indexrelid))::bigint
           FROM pg_index AS i JOIN parts ON parts.oid = i.indrelid
           JOIN pg_class AS c ON c.oid = i.indexrelid
           LEFT JOIN pg_inherits AS h ON h.inhrelid = c.oid
           LEFT JOIN pg_class AS p ON p.oid = h.inhparent
           GROUP BY 1"""
    )
    return {row["name"]: row["bytes"] for row in rows}


async def wal_since(db: Database, lsn: str) -> int:
    return int(await db.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", lsn))


def report_sizes(label: str, sizes: dict[str, int], count: int) -> None:
    total = sum(sizes.values())
    parts = ", ".join(f"{name} {size / 2**20:.1f}" for name, size in sorted(sizes.items()))
    log(f"{label}: {total / 2**20 * 1e6 / count:.0f} MiB per million lines ({parts} MiB)")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Each live process's CPU seconds so far (PostgreSQL's, on this host)."""
    seconds = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a connection that ended meanwhile
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


async def reads(db: Database, label: str, key_id: int, times: int = 200) -> None:
    """The median time of a page of a key's log (``GET …/requests``' query), newest first."""
    for code in (None, "not_found"):
        took = []
        for _ in range(times):
            started = time.perf_counter()
            await queries.list_requests(db, key_id, MAX_ID, 51, None, code)
            took.append(time.perf_counter() - started)
        which = "a page" if code is None else f"a page of code={code}"
        log(f"{label}: {which}: {statistics.median(took) * 1000:.2f} ms (median of {times})")


async def writer(url: str, settings: Settings, key_ids: list[int], count: int) -> None:
    """``count`` lines of ``key_ids``' through the writer, as one busy stretch (on a pool of
    its own: asyncpg replaces a connection after 50,000 queries, and its CPU with it)."""
    db = await Database.open(url, settings)
    activity = ActivityLog(db, retention_days=30)
    now = dt.datetime.now(dt.UTC)
    batch = list(lines(key_ids, count, now - dt.timedelta(minutes=10), dt.timedelta(minutes=10)))
    pids: list[int] = []
    if db.dialect == "postgresql":
        await partitions.maintain(db, now, LONG_AGO)  # today's partition
        rows = await db.fetch(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND backend_type = 'client backend'"""
        )
        pids = [row["pid"] for row in rows]
    before = cpu_seconds(pids)
    started = time.process_time()
    for line in batch:
        activity.record(*line)
    recorded = time.process_time()
    await activity.flush()
    flushed = time.process_time()
    after = cpu_seconds(pids)
    await db.close()
    per = 1e6 / count
    server = ""
    if pids:
        assert after.keys() == before.keys(), "a connection was replaced: fewer --writer-lines"
        server = f"; PostgreSQL's {(sum(after.values()) - sum(before.values())) * per:.1f} µs"
    log(
        f"{db.dialect} writer, {count} lines of {len(key_ids)} keys: "
        f"record {(recorded - started) * per:.2f} µs, "
        f"flush {(flushed - recorded) * per:.1f} µs of this process's CPU a line{server}"
    )


async def postgresql(args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(args.postgres_url.replace("+asyncpg", ""))
    name = f"craftdesk_request_log_{uuid.uuid4().hex[:8]}"
    url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(_env_file=None, database_url=url, key_pepper=PEPPER)  # type: ignore[call-arg]
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        # The previous design: one table, pruned by DELETE; then the migration on its lines.
        await asyncio.to_thread(upgrade, url, BEFORE_PARTITIONS)
        db = await Database.open(url, settings)
        key_ids = await seed_keys(db, settings)
        seconds = await insert_day(db, key_ids, args.lines)
        log(f"one table: {args.lines} lines inserted in {seconds:.1f} s")
        report_sizes("one table", await pg_sizes(db), args.lines)
        await reads(db, "one table", key_ids[0])
        await db.close()
        started = time.perf_counter()
        await asyncio.to_thread(upgrade, url)
        log(f"migration d5f1b9c2e4a7 on {args.lines} lines: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        await asyncio.to_thread(downgrade, url, BEFORE_PARTITIONS)
        log(f"its downgrade: {time.perf_counter() - started:.1f} s")
        db = await Database.open(url, settings)
        end = DAY + dt.timedelta(days=1)
        wal = await db.fetchval("SELECT pg_current_wal_lsn()")
        deleted = await timed(db, "DELETE FROM key_requests WHERE at < $1", end)
        vacuumed = await timed(db, "VACUUM key_requests")
        log(
            f"one table: pruning the day: DELETE {deleted:.2f} s, then VACUUM {vacuumed:.2f} s, "
            f"{await wal_since(db, wal) / 2**20:.0f} MiB of WAL"
        )
        await db.close()

        # Partitioned by day.
        await asyncio.to_thread(upgrade, url)
        db = await Database.open(url, settings)
        await partitions.maintain(db, DAY, LONG_AGO)
        seconds = await insert_day(db, key_ids, args.lines)
        log(f"partitioned: {args.lines} lines inserted in {seconds:.1f} s")
        report_sizes("partitioned", await pg_sizes(db), args.lines)
        for n in range(1, 31):  # the 30 days after it, as a month's partitions
            await partitions.maintain(db, DAY + dt.timedelta(days=n), LONG_AGO)
        count = len(await partitions.partition_days(db))
        await reads(db, f"partitioned ({count} days and the default)", key_ids[0])
        later = end + dt.timedelta(days=30, hours=1)
        await partitions.maintain(db, later, LONG_AGO)  # the days ahead, as made an hour before
        wal = await db.fetchval("SELECT pg_current_wal_lsn()")
        started = time.perf_counter()
        await partitions.maintain(db, later, later - dt.timedelta(days=30))
        dropped = time.perf_counter() - started
        assert await db.fetchval("SELECT count(*) FROM key_requests WHERE at < $1", end) == 0
        log(
            f"partitioned: pruning the day: partitions.maintain dropping it "
            f"{dropped * 1000:.0f} ms, {await wal_since(db, wal) / 2**10:.0f} KiB of WAL"
        )
        await db.close()
        for keys in (10, len(key_ids)):
            await writer(url, settings, key_ids[:keys], args.writer_lines)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.db"
        url = f"sqlite+aiosqlite:///{path}"
        settings = Settings(_env_file=None, database_url=url, key_pepper=PEPPER)  # type: ignore[call-arg]
        await asyncio.to_thread(upgrade, url)
        db = await Database.open(url, settings)
        key_ids = await seed_keys(db, settings)
        checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)"
        await db.fetch(checkpoint)
        empty = path.stat().st_size
        seconds = await insert_day(db, key_ids, args.lines)
        log(f"sqlite: {args.lines} lines inserted in {seconds:.1f} s")
        await db.fetch(checkpoint)
        grown = path.stat().st_size - empty
        rows = await db.fetch(
            """SELECT d.name, sum(d.pgsize) AS bytes FROM dbstat AS d
               JOIN sqlite_master AS m ON m.name = d.name
               WHERE m.tbl_name = 'key_requests' GROUP BY d.name"""
        )
        report_sizes("sqlite", {row["name"]: row["bytes"] for row in rows}, args.lines)
        log(f"sqlite: the file grew {grown / 2**20 * 1e6 / args.lines:.0f} MiB per million lines")
        await reads(db, "sqlite", key_ids[0])
        hour = DAY + dt.timedelta(hours=1)
        deleted = await timed(db, "DELETE FROM key_requests WHERE at < $1", hour)
        log(f"sqlite: pruning an hour's lines (1/24 of the day): DELETE {deleted * 1000:.0f} ms")
        end = DAY + dt.timedelta(days=1)
        deleted = await timed(db, "DELETE FROM key_requests WHERE at < $1", end)
        log(f"sqlite: pruning the rest of the day in one DELETE: {deleted:.2f} s")
        await db.close()
        for keys in (10, len(key_ids)):
            await writer(url, settings, key_ids[:keys], args.writer_lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--writer-lines", type=int, default=50_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CRAFTDESK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        asyncio.run(sqlite(args))
    if args.db in ("postgresql", "both"):
        asyncio.run(postgresql(args))


if __name__ == "__main__":
    main()
