"""The PostgreSQL connection pool under contention, cancellation and expiry: no connection is
lost, leaked past ``max_size``, handed to a request that gave up, or reused after expiry."""

import asyncio
import functools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from craftdesk.db import ConnectionPool


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[ConnectionPool]:
    connect = functools.partial(
        asyncpg.connect, database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    )
    pool = ConnectionPool(connect, max_size=2)
    yield pool
    await pool.close()


async def backend_pids(pool: ConnectionPool) -> set[int]:
    connection = await pool.acquire()
    try:
        return {
            row[0]
            for row in await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
    finally:
        await pool.release(connection)


async def test_a_request_waits_for_a_released_connection(pool: ConnectionPool) -> None:
    first, second = await pool.acquire(), await pool.acquire()
    third = asyncio.ensure_future(pool.acquire(wait_seconds=5))
    await asyncio.sleep(0.05)
    assert not third.done()  # both connections are in use: nothing more is opened
    await pool.release(second)
    assert await asyncio.wait_for(third, 1) is second
    await pool.release(first)
    await pool.release(second)
    assert len(await backend_pids(pool)) == 2


async def test_a_request_that_gave_up_gets_nothing_and_loses_nothing(
    pool: ConnectionPool,
) -> None:
    first, second = await pool.acquire(), await pool.acquire()
    with pytest.raises(TimeoutError):
        await pool.acquire(wait_seconds=0.05)
    waiting = asyncio.ensure_future(pool.acquire(wait_seconds=5))
    await asyncio.sleep(0)
    await pool.release(first)  # handed to ``waiting``, cancelled before it runs again
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The connection went back to the pool, not with the cancelled request.
    assert await asyncio.wait_for(pool.acquire(), 1) is first
    await pool.release(first)
    await pool.release(second)


async def test_expired_connections_are_closed_even_those_in_use(pool: ConnectionPool) -> None:
    idle, in_use = await pool.acquire(), await pool.acquire()
    await pool.release(idle)
    pool.expire_connections()
    assert idle.is_closed()
    assert not in_use.is_closed()  # a request is still using it
    await pool.release(in_use)
    assert in_use.is_closed()
    fresh = await pool.acquire()
    assert fresh is not idle and fresh is not in_use
    assert await fresh.fetchval("SELECT 1") == 1
    await pool.release(fresh)


async def test_a_dropped_connection_frees_its_place_for_a_waiting_request(
    pool: ConnectionPool,
) -> None:
    first, second = await pool.acquire(), await pool.acquire()
    waiting = asyncio.ensure_future(pool.acquire(wait_seconds=5))
    await asyncio.sleep(0)
    first.terminate()  # broken while in use
    await pool.release(first)
    replacement = await asyncio.wait_for(waiting, 5)
    assert replacement is not first and not replacement.is_closed()
    await pool.release(replacement)
    await pool.release(second)


async def test_a_connection_left_in_a_transaction_is_rolled_back(pool: ConnectionPool) -> None:
    connection = await pool.acquire()
    await connection.execute("BEGIN")
    await connection.execute("CREATE TABLE left_behind (id int)")
    await pool.release(connection)
    again = await pool.acquire()
    assert again is connection and not again.is_in_transaction()
    assert await again.fetchval("SELECT to_regclass('left_behind')") is None
    await pool.release(again)


async def test_a_release_cancelled_during_its_rollback_keeps_the_place(
    pool: ConnectionPool,
) -> None:
    """A request cancelled while its connection's rollback runs (its task cut short, the
    server stopping) neither keeps a place of the pool nor leaves the connection half rolled
    back for another request."""
    first, second = await pool.acquire(), await pool.acquire()
    await first.execute("BEGIN")
    await first.execute("CREATE TABLE left_behind (id int)")
    releasing = asyncio.ensure_future(pool.release(first))
    await asyncio.sleep(0)  # its ROLLBACK is under way
    releasing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await releasing
    again = await pool.acquire(wait_seconds=1)
    assert again is not first and not again.is_in_transaction()
    assert await again.fetchval("SELECT to_regclass('left_behind')") is None
    await pool.release(again)
    await pool.release(second)
