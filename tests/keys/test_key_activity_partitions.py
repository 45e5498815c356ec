"""The request log's day partitions on PostgreSQL: made ahead, dropped whole past retention,
never in the way of a line (SQLite keeps one table: ``test_key_activity.py`` prunes it)."""

import asyncio
import datetime as dt
import uuid

import httpx
import pytest

from craftdesk.activity import partitions
from craftdesk.activity.recorder import ActivityLog
from craftdesk.config import Settings
from craftdesk.db import Database, utcnow
from tests.conftest import World, bearer, sign_in

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

DAY = dt.timedelta(days=1)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # as ``before``: nothing to drop


async def _key(client: httpx.AsyncClient, world: World) -> tuple[str, int]:
    workspace, owner = await world.workspace()
    await sign_in(client, workspace, owner)
    key = await world.key(workspace, owner)
    return key, await world.app.state.db.fetchval("SELECT max(id) FROM api_keys")


async def _log_line(log: ActivityLog, key_id: int, at: dt.datetime, path: str) -> None:
    log.record(key_id, at, "GET", path, 200, "ok", "10.0.0.1", None, uuid.uuid4().hex, 1.0)
    await log.flush()


async def _paths(client: httpx.AsyncClient, key_id: int) -> list[str]:
    response = await client.get(f"/v1/api-keys/{key_id}/requests")
    assert response.status_code == 200, response.text
    return [line["path"] for line in response.json()["data"]]


async def _partition_of(db: Database, path: str) -> str:
    return str(
        await db.fetchval("SELECT tableoid::regclass::text FROM key_requests WHERE path = $1", path)
    )


async def test_pruning_makes_today_and_the_next_days_partitions(world: World) -> None:
    await world.app.state.activity.prune()  # as at start-up (its own run may be under way)
    today = utcnow().date()
    days = await partitions.partition_days(world.app.state.db)
    assert [today + n * DAY for n in range(partitions.AHEAD_DAYS + 1)] == days[-3:]


async def test_pruning_drops_the_days_past_retention_whole_and_keeps_the_rest(
    client: httpx.AsyncClient, world: World
) -> None:
    key, key_id = await _key(client, world)
    db, now = world.app.state.db, utcnow()
    # Kept 3 days (the app's own log keeps 30: its pruning leaves these lines alone).
    log = ActivityLog(db, retention_days=3)
    for days_ago in (6, 4, 2):
        at = now - days_ago * DAY
        await _log_line(log, key_id, at, f"/v1/projects/{days_ago}")
        await partitions.maintain(db, at, LONG_AGO)  # that day's partition, and the 2 after
        assert await _partition_of(db, f"/v1/projects/{days_ago}") == (
            partitions.partition_name(at.date())
        )
    assert (await client.get("/v1/auth/key", headers=bearer(key))).status_code == 200
    await world.app.state.activity.flush()

    await log.prune()

    assert await _paths(client, key_id) == ["/v1/auth/key", "/v1/projects/2"]
    days = await partitions.partition_days(db)
    assert min(days) == (now - 3 * DAY).date()  # that day ends within the retention: kept
    assert {(now - n * DAY).date() for n in (2, 1, 0)} <= set(days)
    assert {(now - n * DAY).date() for n in (6, 5, 4)}.isdisjoint(days)


async def test_a_line_of_a_day_without_partition_lands_then_moves_into_its_day(
    client: httpx.AsyncClient, world: World
) -> None:
    _, key_id = await _key(client, world)
    later = utcnow() + 10 * DAY  # a clock ahead: no partition made that far ahead
    db = world.app.state.db
    await _log_line(world.app.state.activity, key_id, later, "/v1/ahead")
    assert await _paths(client, key_id) == ["/v1/ahead"]
    assert await _partition_of(db, "/v1/ahead") == partitions.DEFAULT

    await partitions.maintain(db, later, LONG_AGO)

    assert await _partition_of(db, "/v1/ahead") == partitions.partition_name(later.date())
    assert await _paths(client, key_id) == ["/v1/ahead"]


async def test_two_processes_making_and_dropping_the_same_partitions_at_once_both_succeed(
    world: World, settings: Settings
) -> None:
    other = await Database.open(settings.database_url, settings)  # as another process's
    try:
        start = utcnow() + 100 * DAY
        for n in range(5):
            now = start + n * 3 * DAY
            await asyncio.gather(
                *(partitions.maintain(db, now, LONG_AGO) for db in (world.app.state.db, other))
            )
        made = await partitions.partition_days(other)
        assert [start.date() + n * DAY for n in range(15)] == made[-15:]
        await asyncio.gather(
            *(
                partitions.maintain(db, start, start + 20 * DAY)
                for db in (world.app.state.db, other)
            )
        )
        assert set(made[-15:]).isdisjoint(await partitions.partition_days(other))
    finally:
        await other.close()
