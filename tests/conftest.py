"""One fixture runs every test on SQLite and on PostgreSQL, each test on its own database.

Alembic migrates a template database once per backend and run; each test gets a fresh copy
(a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL) and drops it after.
PostgreSQL comes from ``CRAFTDESK_TEST_POSTGRES_URL`` (default: the local server, user
postgres). Where none answers, its tests skip with the reason, unless CI=true or
CRAFTDESK_REQUIRE_POSTGRES=1, where they fail.
"""

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from craftdesk.app import create_app
from craftdesk.config import Settings
from craftdesk.db import Row
from craftdesk.keys import service as keys_service
from craftdesk.keys.service import issue_key
from craftdesk.logs import JsonFormatter
from craftdesk.migrate import upgrade
from craftdesk.workspaces.queries import WorkspaceRow, membership_by_email, set_plan
from craftdesk.workspaces.service import add_member, create_workspace

POSTGRES_URL = os.environ.get(
    "CRAFTDESK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI") == "true"
REQUIRE_POSTGRES = IN_CI or os.environ.get("CRAFTDESK_REQUIRE_POSTGRES") == "1"
TEST_PEPPER = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD = "correct horse battery staple"


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + f"/{database}"
    return dsn


async def _pg_admin(sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Backends:
    """Migrated template databases, made on first use, removed at the end of the run."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.templates: dict[str, str] = {}
        self.postgres_error: str | None = None

    def template(self, backend: str) -> str:
        if backend not in self.templates:
            if backend == "sqlite":
                path = self.tmp / "template.db"
                upgrade(f"sqlite+aiosqlite:///{path}")
                self.templates[backend] = str(path)
            else:
                name = f"craftdesk_tpl_{uuid.uuid4().hex[:10]}"
                try:
                    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
                except (OSError, asyncpg.PostgresError) as exc:
                    self.postgres_error = f"{type(exc).__name__}: {exc}"
                    raise
                upgrade(_url(name))
                self.templates[backend] = name
        return self.templates[backend]

    def new_database(self, backend: str) -> tuple[str, Any]:
        """A fresh migrated database's URL, and how to drop it."""
        template = self.template(backend)
        if backend == "sqlite":
            path = self.tmp / f"{uuid.uuid4().hex}.db"
            shutil.copy(template, path)
            return f"sqlite+aiosqlite:///{path}", lambda: path.unlink(missing_ok=True)
        name = f"craftdesk_t_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return _url(name), lambda: asyncio.run(
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )

    def close(self) -> None:
        name = self.templates.get("postgresql")
        if name:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _url(database: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    found = Backends(tmp_path_factory.mktemp("databases"))
    yield found
    found.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backends: Backends, backend: str) -> Iterator[str]:
    try:
        url, drop = backends.new_database(backend)
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(
            f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__}); set "
            "CRAFTDESK_TEST_POSTGRES_URL to run these tests"
        )
    yield url
    drop()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        key_pepper=TEST_PEPPER,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [_record_error_body]},
    ) as http:
        yield http


@pytest.fixture
def queries(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the app asks of the database from now on: each read or transaction of the
    routes, and each key the gate is asked to look up (not the request log's writer, which
    runs on its own once a second)."""
    asked: list[str] = []
    db, gate = app.state.db, app.state.gate

    def recording(name: str, method: Any) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is None or task.get_name() != "activity-log":  # not the log's writer
                asked.append(f"{name} {args[:1]}")
            return method(*args, **kwargs)

        return record

    monkeypatch.setattr(db, "fetch", recording("fetch", db.fetch))
    monkeypatch.setattr(db, "transaction", recording("transaction", db.transaction))
    monkeypatch.setattr(gate, "admit", recording("gate.admit", gate.admit))
    return asked


@dataclass
class Member:
    user_id: int
    membership_id: int
    email: str
    role: str


class Recording:
    """A ``Queries`` of ``dialect`` that keeps each statement instead of running it (and
    finds no rows): what a query function would send, to EXPLAIN."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.statements.append((sql, args))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self.statements.append((sql, args))
        return None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return None


@dataclass
class World:
    """Sets up workspaces, members and keys straight through the service layer."""

    app: FastAPI

    async def workspace(
        self, name: str = "Acme", plan: str = "free"
    ) -> tuple[WorkspaceRow, Member]:
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        async with self.app.state.db.transaction() as tx:
            workspace = await create_workspace(
                tx, name=name, owner_email=email, owner_password=PASSWORD, plan=plan
            )
            membership = await membership_by_email(tx, workspace.id, email)
        assert membership is not None
        return workspace, Member(membership.user_id, membership.id, email, "owner")

    async def member(self, workspace: WorkspaceRow, role: str = "member") -> Member:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        async with self.app.state.db.transaction() as tx:
            membership = await add_member(tx, workspace, email=email, password=PASSWORD, role=role)
        return Member(membership.user_id, membership.id, email, role)

    async def key(
        self, workspace: WorkspaceRow, member: Member, scope: str = "full", **options: Any
    ) -> str:
        async with self.app.state.db.transaction() as tx:
            _, issued = await issue_key(
                tx,
                pepper=self.app.state.settings.pepper,
                workspace_id=workspace.id,
                created_by_id=member.user_id,
                membership_id=member.membership_id,
                name=options.pop("name", "test key"),
                scope=scope,
                **options,
            )
        return issued.key

    async def set_plan(
        self, workspace: WorkspaceRow, plan: str | None = None, quota: int | None = None
    ) -> None:
        async with self.app.state.db.transaction() as tx:
            await set_plan(tx, workspace.id, plan, quota)


@pytest.fixture
def world(app: FastAPI) -> World:
    return World(app)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def sign_in(
    client: httpx.AsyncClient, workspace: WorkspaceRow, member: Member, password: str = PASSWORD
) -> dict[str, str]:
    """Sign the client in; returns the CSRF header for unsafe requests."""
    response = await client.post(
        "/v1/sessions",
        json={"workspace": workspace.slug, "email": member.email, "password": password},
    )
    assert response.status_code == 201, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(JsonFormatter().format(record))


@pytest.fixture(autouse=True)
def no_secrets_in_logs_or_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every test runs with DEBUG logs recorded; none may contain a key, pepper or password,
    nor a traceback (an unhandled error, which answers 500).

    Error bodies are checked too: the ``client`` fixture adds them to ``error_bodies``.
    """
    issued: list[str] = []
    original = keys_service.generate_key

    def recording_generate_key() -> Any:
        key = original()
        issued.append(key.key)
        return key

    monkeypatch.setattr(keys_service, "generate_key", recording_generate_key)
    recorder = _Recorder()
    loggers = [logging.getLogger(name) for name in ("craftdesk", "uvicorn", "sqlalchemy")]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(recorder)
        if logger.name != "sqlalchemy":
            logger.setLevel(logging.DEBUG)
    error_bodies.clear()
    yield issued
    for logger, level in previous:
        logger.removeHandler(recorder)
        logger.setLevel(level)
    secrets_ = [*issued, TEST_PEPPER, PASSWORD]
    for text in [*recorder.lines, *error_bodies]:
        for secret in secrets_:
            assert secret not in text, "a secret reached a log line or an error body"
    tracebacks = [line for line in recorder.lines if '"exception": ' in line]
    assert not tracebacks, f"the server logged a traceback: {tracebacks[0]}"


error_bodies: list[str] = []


async def _record_error_body(response: httpx.Response) -> None:
    if response.status_code >= 400:
        await response.aread()
        error_bodies.append(response.text)
