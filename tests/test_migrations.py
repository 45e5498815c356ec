"""The schema changes only through migrations, and they agree with the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from craftdesk.migrate import downgrade, upgrade
from craftdesk.models import Base


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
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


async def _run(command, url: str) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    await asyncio.to_thread(command, url)
