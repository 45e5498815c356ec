"""The database: the tables' declarative base (for Alembic) and ``Database``, the one way
the application reads and writes: fixed SQL through the driver itself.

Each domain keeps its SQL in a ``queries.py`` beside its routes: functions that take a
``Queries`` (the ``Database`` for a read, a ``Transaction`` for writes that commit together)
and return rows, which the routes map straight into their response models. Queries are
written once, with PostgreSQL's ``$1`` placeholders; SQLite reads them as ``?1``.
"""

import asyncio
import collections
import datetime as dt
import functools
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, NoReturn, Protocol

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

logger = logging.getLogger("craftdesk.db")

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


# ---------------------------------------------------------------------------------------
# The one way the application reads and writes: fixed SQL through the driver itself.
# ---------------------------------------------------------------------------------------


class IntegrityViolation(Exception):
    """A constraint refused a write (unique, foreign key): the caller decides what it means."""


class Unavailable(Exception):
    """The database could not be reached or answered in time."""


def _sqlite_datetime(value: dt.datetime) -> str:
    """How SQLite stores a ``UTCDateTime``: naive UTC text (as SQLAlchemy writes it)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@functools.lru_cache(maxsize=8192)
def _aware(raw: bytes) -> dt.datetime:
    """A stored ``DATETIME`` as an aware datetime. Cached: a page read again and again (the
    lists integrators poll) parses the same few timestamps, and a datetime is immutable."""
    return dt.datetime.fromisoformat(raw.decode() + "+00:00")


# Only connections opened with ``detect_types`` (the Database's own) use the converters.
sqlite3.register_adapter(dt.datetime, _sqlite_datetime)
sqlite3.register_adapter(dt.date, dt.date.isoformat)
sqlite3.register_converter("DATETIME", _aware)
sqlite3.register_converter("DATE", lambda raw: dt.date.fromisoformat(raw.decode()))

_PLACEHOLDER = re.compile(r"\$(\d+)")
_CAST = re.compile(r"::[a-z]+(\[\])?")


@functools.cache
def _sqlite_text(sql: str) -> str:
    """A query as SQLite reads it: every query is written once, for PostgreSQL, with ``$1``
    placeholders (SQLite's ``?1``) and, where PostgreSQL cannot tell a parameter's type,
    ``::type`` casts (dropped: SQLite's values need none)."""
    return _CAST.sub("", _PLACEHOLDER.sub(r"?\1", sql))


def placeholders(first: int, count: int) -> str:
    """``$first, …`` for ``count`` values: an ``IN`` list (at most 100 ids in this app)."""
    return ", ".join(f"${n}" for n in range(first, first + count))


def value_rows(count: int, casts: Sequence[str]) -> str:
    """``($1, $2::date, …), (…)``: ``count`` rows of ``len(casts)`` parameters each, for a
    multi-row ``VALUES`` (``casts``: each column's ``::type``, or ``""``)."""
    width = len(casts)
    return ", ".join(
        "(" + ", ".join(f"${n * width + c + 1}{cast}" for c, cast in enumerate(casts)) + ")"
        for n in range(count)
    )


class Row(Protocol):
    """A result row: by column name (``row["name"]``) or position, on both dialects."""

    def __getitem__(self, key: str | int) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> Any: ...


class Queries(Protocol):
    """What a query module reads with: the ``Database`` or a transaction."""

    dialect: str

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Transaction(Queries, Protocol):
    """What a query module writes with: a ``db.transaction()``, whose statements commit
    together, or the ``Database`` itself, where each statement commits on its own (a write
    of one statement needs no more: it is atomic, and costs no BEGIN and COMMIT)."""

    async def write(self, sql: str, *args: Any) -> Row | None:
        """Run a write; returns its first row (of ``RETURNING``), if any."""
        ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a write; returns how many rows it changed."""
        ...


class Database:
    """The application's database: PostgreSQL through an asyncpg pool, or a SQLite file.

    A read is one statement and one round trip, outside any transaction (on SQLite it takes
    no lock: WAL readers never wait for the writer). A write is a ``transaction()``: on
    SQLite ``BEGIN IMMEDIATE`` (the write lock, taken up front so that it never has to be
    upgraded), on PostgreSQL a transaction on a connection of the pool.
    """

    dialect: str

    @staticmethod
    async def open(url: str, settings: "DatabaseSettings") -> "Database":
        if url.startswith("sqlite"):
            return SqliteDatabase(url, settings)
        return await PostgresDatabase.open(url, settings)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        raise NotImplementedError

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def write(self, sql: str, *args: Any) -> Row | None:
        async with self.transaction() as tx:
            return await tx.write(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, *args)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class DatabaseSettings(Protocol):
    db_timeout_seconds: float
    db_max_connections: int
    db_pool_timeout_seconds: float


# ---- PostgreSQL ------------------------------------------------------------------------


class ConnectionPool:
    """Up to ``max_size`` asyncpg connections, opened as requests need them and then kept.

    asyncpg's own pool costs some 55 µs of CPU per acquire and release (a proxy object per
    acquire, a shielded task per release), more than the query; this one is a list of idle
    connections and a queue of waiting requests. The application sets no session state (no
    LISTEN, advisory lock held or SET), so a connection needs no reset query between uses:
    only a rollback if a request was cut short inside a transaction.
    """

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], max_size: int) -> None:
        self._connect = connect
        self._max_size = max_size
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # connections open or being opened, idle or in use
        self._waiting: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        # ``expire_connections`` starts a new generation; older connections are closed.
        self._generation = 0
        self._generations: dict[asyncpg.Connection, int] = {}
        self._closed = False

    async def acquire(self, wait_seconds: float | None = None) -> asyncpg.Connection:
        """An idle connection, a new one, or (all ``max_size`` in use) the next released,
        waiting up to ``wait_seconds`` for it (``TimeoutError``)."""
        while True:
            if self._idle:
                return self._idle.pop()
            if self._open < self._max_size:
                return await self._new()
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout(wait_seconds):
                    connection = await waiter
            except BaseException:
                if not waiter.done():
                    self._waiting.remove(waiter)
                elif not waiter.cancelled():  # handed over as the wait ended: pass it on
                    self._hand_over(waiter.result())
                raise
            if connection is not None:
                return connection
            # None: a connection was dropped, and its place is this request's to open.

    async def _new(self) -> asyncpg.Connection:
        self._open += 1
        try:
            connection = await self._connect()
        except BaseException:
            self._open -= 1
            self._hand_over(None)
            raise
        self._generations[connection] = self._generation
        return connection

    async def release(self, connection: asyncpg.Connection) -> None:
        try:
            if not connection.is_closed() and connection.is_in_transaction():
                await connection.execute("ROLLBACK")
        except BaseException as exc:
            # Rolled back or not, it is for no other request: closed, its place freed below
            # (a cancellation too, then raised on).
            connection.terminate()
            if not isinstance(exc, Exception):
                raise
        finally:
            if (
                self._closed
                or connection.is_closed()
                or self._generations.get(connection) != self._generation
            ):
                self._drop(connection)
                self._hand_over(None)
            else:
                self._hand_over(connection)

    def _drop(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._generations.pop(connection, None)
        self._open -= 1

    def _hand_over(self, connection: asyncpg.Connection | None) -> None:
        """``connection`` (``None``: the place of a dropped one) to the first request still
        waiting, or back to the idle ones."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)

    def expire_connections(self) -> None:
        """Close the idle connections now and those in use when released: after a broken
        connection, the others may be as dead (the server restarted)."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            self._drop(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._generations.pop(connection, None)
            self._open -= 1
            await connection.close(timeout=5)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: ConnectionPool, settings: DatabaseSettings):
        self.pool = pool  # the key gate keeps one of its connections
        self._settings = settings

    @classmethod
    async def open(cls, url: str, settings: DatabaseSettings) -> "PostgresDatabase":
        """The pool opens connections as requests need them (start-up needs no database)."""
        connect = functools.partial(
            asyncpg.connect,
            url.replace("postgresql+asyncpg://", "postgresql://", 1),
            timeout=settings.db_timeout_seconds,
            command_timeout=10 * settings.db_timeout_seconds,
        )
        return cls(ConnectionPool(connect, settings.db_max_connections), settings)

    async def _acquire(self) -> asyncpg.Connection:
        """A connection of the pool, waiting up to the pool timeout for one to be free."""
        try:
            return await self.pool.acquire(self._settings.db_pool_timeout_seconds)
        except _UNREACHABLE as exc:
            raise Unavailable(type(exc).__name__) from exc

    def _fail(self, connection: asyncpg.Connection, exc: Exception) -> NoReturn:
        """Raise what ``exc``, raised while using ``connection``, means to the app."""
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            raise IntegrityViolation(exc.sqlstate) from exc
        if isinstance(exc, _BROKEN):  # a timeout too: TimeoutError is an OSError
            # A broken connection: drop it, and the idle ones that may be as dead.
            connection.terminate()
            self.pool.expire_connections()
            raise Unavailable(type(exc).__name__) from exc
        raise exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        connection = await self._acquire()
        try:
            return await connection.fetch(sql, *args)  # type: ignore[no-any-return]
        except Exception as exc:
            self._fail(connection, exc)
        finally:
            await self.pool.release(connection)

    async def write(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        connection = await self._acquire()
        try:
            return _rowcount(await connection.execute(sql, *args))
        except Exception as exc:
            self._fail(connection, exc)
        finally:
            await self.pool.release(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        connection = await self._acquire()
        try:
            async with connection.transaction():
                yield _PostgresTransaction(connection)
        except Exception as exc:
            self._fail(connection, exc)
        finally:
            await self.pool.release(connection)

    async def close(self) -> None:
        await self.pool.close()


class _PostgresTransaction:
    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection):
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._connection.fetch(sql, *args)  # type: ignore[no-any-return]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._connection.fetchrow(sql, *args)  # type: ignore[no-any-return]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._connection.fetchval(sql, *args)

    async def write(self, sql: str, *args: Any) -> Row | None:
        return await self._connection.fetchrow(sql, *args)  # type: ignore[no-any-return]

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._connection.execute(sql, *args))


_UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
_BROKEN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
)


def _rowcount(status: str) -> int:
    """The rows a command changed, from its status (``UPDATE 3``, ``INSERT 0 1``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# ---- SQLite ----------------------------------------------------------------------------


class SqliteDatabase(Database):
    """A SQLite file, used right on the event loop.

    SQLite is a library in this process: a statement is some microseconds of CPU, less than
    handing it to a thread costs (each call from a thread must win the GIL back from the busy
    event loop). So reads run on one connection of their own, in autocommit (no lock), and
    writes on another, one transaction at a time per process: the write lock is only tried
    (busy timeout 0) and retried after short sleeps until the database timeout, so waiting
    for another process never blocks the loop. Commits never checkpoint on the loop: the WAL
    is copied into the database file by a background thread, at most once a second.
    """

    dialect = "sqlite"
    RETRY_SECONDS = 0.001
    CHECKPOINT_SECONDS = 1.0

    def __init__(self, url: str, settings: DatabaseSettings):
        self.path = url.split(":///", 1)[1] if ":///" in url else ""
        self._timeout = settings.db_timeout_seconds
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._writing = asyncio.Lock()
        self._checkpoint: asyncio.Task[None] | None = None
        self._last_checkpoint = 0.0

    def connect(self) -> sqlite3.Connection:
        """A connection with what every one needs (WAL, foreign keys, the converters)."""
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=0,
                isolation_level=None,
                detect_types=sqlite3.PARSE_DECLTYPES,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise Unavailable(str(exc)) from exc
        try:
            configure_sqlite_connection(connection)
            connection.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            connection.close()
            raise
        connection.row_factory = sqlite3.Row
        return connection

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self._reader is None:
            self._reader = self.connect()
            # A reader waits only in rare moments (another connection recovering the WAL).
            self._reader.execute("PRAGMA busy_timeout=100")
        return _run(self._reader, sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._writing:
            connection = self._writer or self.connect()
            self._writer = connection
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while True:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                        raise
                if loop.time() >= deadline:
                    raise Unavailable("the SQLite write lock stayed taken")
                await asyncio.sleep(self.RETRY_SECONDS)
            try:
                yield _SqliteTransaction(connection)
                connection.execute("COMMIT")
            except BaseException:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    self._writer = None
                    connection.close()
                raise
        self.checkpoint_soon()

    def checkpoint_soon(self) -> None:
        """Copy the WAL into the database file in the background, at most once a second."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_checkpoint >= self.CHECKPOINT_SECONDS and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._last_checkpoint = loop.time()
            self._checkpoint = asyncio.create_task(asyncio.to_thread(self._run_checkpoint))

    def _run_checkpoint(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=self._timeout)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                connection.close()
        except sqlite3.Error as exc:  # the next one will try again
            logger.warning("database: checkpoint failed (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None


def _run(connection: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    try:
        return connection.execute(_sqlite_text(sql), args).fetchall()
    except sqlite3.IntegrityError as exc:
        raise IntegrityViolation(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_CANTOPEN,
            sqlite3.SQLITE_IOERR,
        ):
            raise Unavailable(str(exc)) from exc
        raise


class _SqliteTransaction:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return _run(self._connection, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = _run(self._connection, sql, args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = _run(self._connection, sql, args)
        return rows[0][0] if rows else None

    async def write(self, sql: str, *args: Any) -> Row | None:
        rows = _run(self._connection, sql, args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            return self._connection.execute(_sqlite_text(sql), args).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc


async def get_database(request: Request) -> Database:
    # async: FastAPI runs a plain function dependency in its thread pool.
    database: Database = request.app.state.db
    return database


Db = Annotated[Database, Depends(get_database)]
