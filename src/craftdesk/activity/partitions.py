"""The request log's day partitions, on PostgreSQL (SQLite keeps one table and deletes).

``key_requests`` is partitioned by range of ``at``: one partition per UTC day
(``key_requests_20261201``), and ``key_requests_default`` for a line of a day that has none
yet, so that an insert never fails. The log's writer creates today's partition and the next
``AHEAD_DAYS`` days' at start-up and once an hour, and drops a day's partition whole once the
day ended before the retention's cutoff: no DELETE of a million rows, no dead rows to vacuum.
A day's lines are so kept between the retention and one day more.

Several processes (or hosts) may do this at once: each change is one statement that takes a
transaction-scoped advisory lock, then looks again. Each also gives up after ``LOCK_TIMEOUT``
rather than wait behind a long transaction (while it waits, the key gate's writes to
``api_keys`` would queue behind it: attaching a partition locks ``api_keys`` for its foreign
key); it is tried again the next hour, days ahead of need.
"""

import datetime as dt
import re

from craftdesk.db import Database, Queries

AHEAD_DAYS = 2
LOCK = 0x6B65795F72657173  # pg_advisory_xact_lock's key for the log's partitions
LOCK_TIMEOUT = "500ms"
DEFAULT = "key_requests_default"
_DAY_PARTITION = re.compile(r"key_requests_(\d{8})")


def partition_name(day: dt.date) -> str:
    return f"key_requests_{day:%Y%m%d}"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the partitions are no tables of the models (``env.py``
    and the drift test compare without them)."""
    return not (type_ == "table" and (name == DEFAULT or _DAY_PARTITION.fullmatch(name or "")))


async def partition_days(db: Queries) -> list[dt.date]:
    """The days that have a partition, in order."""
    rows = await db.fetch(
        """SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'key_requests'::regclass"""
    )
    days = [_DAY_PARTITION.fullmatch(row["relname"]) for row in rows]
    return sorted(dt.datetime.strptime(m[1], "%Y%m%d").date() for m in days if m)


async def maintain(db: Database, now: dt.datetime, before: dt.datetime) -> None:
    """Create the partitions of today and the next days, and drop those of the days that
    ended by ``before``. (The default partition's old lines go with the rest of the
    pruning: ``queries.prune``.)"""
    today = now.astimezone(dt.UTC).date()
    have = set(await partition_days(db))
    for day in (today + dt.timedelta(days=n) for n in range(AHEAD_DAYS + 1)):
        if day not in have:
            await db.execute(_create(day))
    for day in have:
        if _midnight(day + dt.timedelta(days=1)) <= before:
            await db.execute(_changing(f"DROP TABLE IF EXISTS {partition_name(day)};"))


def _create(day: dt.date) -> str:
    """The day's partition, with any lines of that day the default partition took meanwhile
    (PostgreSQL refuses a partition whose rows the default holds). Attached rather than
    made ``PARTITION OF``: that takes a lighter lock on key_requests, whose readers and
    writers go on meanwhile."""
    name = partition_name(day)
    start, end = _midnight(day).isoformat(), _midnight(day + dt.timedelta(days=1)).isoformat()
    return _changing(
        f"""IF to_regclass('{name}') IS NULL THEN  -- else another process made it
                CREATE TABLE {name} (LIKE key_requests INCLUDING DEFAULTS);
                WITH moved AS (
                    DELETE FROM {DEFAULT} WHERE at >= '{start}' AND at < '{end}' RETURNING *)
                INSERT INTO {name} SELECT * FROM moved;
                ALTER TABLE key_requests ATTACH PARTITION {name}
                    FOR VALUES FROM ('{start}') TO ('{end}');
            END IF;"""
    )


def _changing(body: str) -> str:
    """``body`` as one statement, under the lock: one round trip, which PostgreSQL commits
    before it answers, so no lock it took waits on this process meanwhile."""
    return f"""DO $$ BEGIN
        SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
        PERFORM pg_advisory_xact_lock({LOCK});
        {body}
    END $$"""


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)
