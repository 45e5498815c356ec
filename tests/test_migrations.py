"""The schema changes only through migrations, and they agree with the models."""

import asyncio
import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from craftdesk.activity import partitions, queries
from craftdesk.activity.partitions import include_name
from craftdesk.config import Settings
from craftdesk.db import Database
from craftdesk.keys.service import issue_key
from craftdesk.migrate import downgrade, upgrade
from craftdesk.models import Base
from craftdesk.schemas import MAX_ID
from craftdesk.workspaces.queries import membership_by_email
from craftdesk.workspaces.service import create_workspace
from tests.conftest import PASSWORD


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"compare_type": True, "include_name": include_name}
                    ),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrated_database_matches_models(database_url: str) -> None:
    assert await _diff(database_url) == []


@pytest.mark.usefixtures("backend")
async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    await _run(downgrade, database_url)
    assert await _tables(database_url) <= {"alembic_version"}
    await _run(upgrade, database_url)
    assert await _diff(database_url) == []
    assert "api_keys" in await _tables(database_url)


async def _run(command, url: str, *revision: str) -> None:  # type: ignore[no-untyped-def]
    await asyncio.to_thread(command, url, *revision)


BEFORE_PARTITIONS = "aec3bd74356d"
LINE_TIMES = [
    dt.datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 30, tzinfo=dt.UTC),  # the next day's first instant
    dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC),
]


async def _lines(db: Database) -> list[tuple[object, ...]]:
    rows = await db.fetch("SELECT id, api_key_id, at, path FROM key_requests ORDER BY id")
    return [tuple(row) for row in rows]


async def _add_lines(db: Database, key_id: int, times: list[dt.datetime]) -> None:
    async with db.transaction() as tx:
        await queries.insert_requests(
            tx,
            [
                (key_id, at, "GET", f"/v1/line/{n}", 200, "ok", None, None, "r" * 32, 1.0)
                for n, at in enumerate(times)
            ],
        )


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_partitioning_the_request_log_keeps_its_lines_both_ways(
    database_url: str, settings: Settings
) -> None:
    await _run(downgrade, database_url, BEFORE_PARTITIONS)
    db = await Database.open(database_url, settings)
    try:
        async with db.transaction() as tx:
            workspace = await create_workspace(
                tx, name="Acme", owner_email="o@example.com", owner_password=PASSWORD
            )
            member = await membership_by_email(tx, workspace.id, "o@example.com")
            assert member is not None
            await issue_key(
                tx,
                pepper=settings.pepper,
                workspace_id=workspace.id,
                created_by_id=member.user_id,
                membership_id=member.id,
                name="k",
                scope="full",
            )
        key_id = await db.fetchval("SELECT max(id) FROM api_keys")
        await _add_lines(db, key_id, LINE_TIMES)
        before = await _lines(db)
    finally:
        await db.close()

    await _run(upgrade, database_url)
    db = await Database.open(database_url, settings)
    try:
        assert await _lines(db) == before
        placed = await db.fetch("SELECT tableoid::regclass::text, at FROM key_requests")
        assert {(where, at) for where, at in placed} == {
            (partitions.partition_name(at.date()), at) for at in LINE_TIMES
        }
        assert await partitions.partition_days(db) == [dt.date(2026, 11, d) for d in (29, 30)]
        # The same sequence goes on; a page goes by id across the days' partitions.
        await _add_lines(db, key_id, [LINE_TIMES[0]])
        after = await _lines(db)
        assert after[:-1] == before and after[-1][0] > before[-1][0]
        page = await queries.list_requests(db, key_id, MAX_ID, 2, None, None)
        assert [row["path"] for row in page] == ["/v1/line/0", "/v1/line/2"]
    finally:
        await db.close()
    assert await _diff(database_url) == []

    await _run(downgrade, database_url, BEFORE_PARTITIONS)
    db = await Database.open(database_url, settings)
    try:
        assert await _lines(db) == after
        kind = "SELECT relkind::text FROM pg_class WHERE relname = 'key_requests'"
        assert await db.fetchval(kind) == "r"  # a plain table again
        await _add_lines(db, key_id, [LINE_TIMES[0]])
        assert (await _lines(db))[-1][0] > after[-1][0]
    finally:
        await db.close()
    await _run(upgrade, database_url)
    assert await _diff(database_url) == []
