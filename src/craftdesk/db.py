"""The database: declarative base, engine set-up per dialect, and the session dependency."""

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """What every SQLite connection needs: WAL (readers never block the writer), and
    ``synchronous=NORMAL``, durable in WAL mode against a crash of the process (an OS crash
    or power loss may lose the last commits)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(
    url: str, *, timeout: float = 2.0, max_connections: int = 30, pool_timeout: float = 30.0
) -> AsyncEngine:
    """An engine with the settings each dialect needs for exact, concurrent counting.

    SQLite runs in WAL mode and opens every transaction with ``BEGIN IMMEDIATE``, so writers
    queue on the busy timeout instead of failing when a read transaction upgrades to a write.
    PostgreSQL connections give up after ``timeout`` seconds so an outage answers 503 quickly.
    At most ``max_connections`` are open (10 kept, the rest while busy); a request that finds
    them all taken waits its turn up to ``pool_timeout`` seconds: under load, slower answers
    rather than errors.
    """
    # hide_parameters: an error's message (and so a logged traceback) never carries the
    # statement's parameters, which include key hashes and password hashes.
    kwargs: dict[str, Any] = {"pool_pre_ping": False, "hide_parameters": True}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None
            configure_sqlite_connection(dbapi_connection)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args = {"timeout": timeout, "command_timeout": 10 * timeout}
    kept = min(10, max_connections)
    return create_async_engine(
        url,
        connect_args=connect_args,
        pool_size=kept,
        max_overflow=max_connections - kept,
        pool_timeout=pool_timeout,
        **kwargs,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, opened by the route that needs it (not by a middleware).

    It ends with the route function, before the response is written (``scope="function"``),
    so its connection goes back to the pool as soon as the route no longer needs it.
    """
    async with request.app.state.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
